"""Write phantom exams in the MRNet-v1.0 layout, in parallel, atomically, and cache the default set."""

import json
import multiprocessing as mp
import os
import shutil
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mrnet.contract import PLANES, TASKS
from phantom.exam import leading_planes, make_exam
from phantom.landmarks import ANATOMY, write_anatomy

# v4: the difficulty ladder (lesion scale and contrast) and a second style; its defaults (rung v3,
# style anatomical) write v3's series byte for byte, and phantom-truth.json records rung and style.
# v5: the anatomy truth beside the series (phantom-anatomy.npz, tear centres in phantom-truth.json);
# plain exams' series are v4's byte for byte, the randomised corpus gains clutter and wider shapes.
# v6: a knee at real scale and shape (anatomy.py, measured against ../shared/REAL_KNEE.md by
# geometry.py), textures, sub-label signals, left knees; the corpus randomised SynthSeg's way.
GENERATOR_VERSION = 6
DEFAULTS = dict(n_train=240, n_valid=80, seed=0, render_size=128, label_noise=0.0, lesion_scale=1.0,
                lesion_contrast=1.0, style="anatomical", randomise=False)
CACHE = Path(os.environ.get("MRNET_CACHE", Path(__file__).resolve().parents[2] / ".cache"))


def generator_sha256():
    """A hash of the generator's code (this package's sources): the cache key names the version and
    parameters, but a dataset made by earlier code of the same version would otherwise be reused,
    and a figure measured on it said to be of this code."""
    import hashlib

    digest = hashlib.sha256()
    for source in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def _exam(index, seed, render_size, lesion_scale, lesion_contrast, style, randomise, planes):
    return make_exam(seed, index, render_size, lesion_scale=lesion_scale, lesion_contrast=lesion_contrast, style=style,
                     randomise=randomise, with_anatomy=True, planes=planes)


def write_phantom(out, n_train, n_valid, seed=0, render_size=128, label_noise=0.0, workers=None, progress=True,
                  lesion_scale=1.0, lesion_contrast=1.0, style="anatomical", randomise=False, planes=PLANES):
    """Generate into `out.tmp-*`, then rename: an interrupted run never leaves a half dataset.
    `lesion_scale`, `lesion_contrast`: the rung of the difficulty ladder (findings.RUNGS);
    `style`: the drawing and rendering (anatomy.STYLES); `randomise`: the pretraining corpus's
    random rendering and lesion rung per exam; `planes`: fewer stacks than the layout's three, for a
    check that reads only those (exam.make_exam)."""
    planes = leading_planes(planes)  # refused before any folder is made
    out = Path(out)
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for split in ("train", "valid"):
        for plane in planes:
            (tmp / split / plane).mkdir(parents=True)
    workers = workers or min(os.cpu_count() or 1, 8)
    total = n_train + n_valid
    labels = {s: {t: [] for t in TASKS} for s in ("train", "valid")}
    truth, anatomy = {}, {}
    noise_rng = np.random.default_rng([seed, 1 << 30])
    job = partial(_exam, seed=seed, render_size=render_size, lesion_scale=lesion_scale,
                  lesion_contrast=lesion_contrast, style=style, randomise=randomise, planes=planes)
    ctx = mp.get_context("fork")
    with ctx.Pool(workers) if workers > 1 else _Serial() as pool:
        exams = pool.imap(job, range(total), chunksize=2)
        for index, exam in enumerate(tqdm(exams, total=total, desc="phantom", unit="exam", disable=not progress)):
            split = "train" if index < n_train else "valid"
            case = f"{index:04d}"
            for plane in planes:
                np.save(tmp / split / plane / f"{case}.npy", exam["series"][plane], allow_pickle=False)
            observed = list(exam["labels"])
            for t, task in enumerate(TASKS):
                if label_noise and noise_rng.random() < label_noise:
                    observed[t] = 1 - observed[t]
                labels[split][task].append(f"{case},{observed[t]}\n")
            anatomy[case] = exam["anatomy"]
            truth[case] = {"split": split, "labels": exam["labels"], "findings": exam["findings"],
                           "bad_stacks": exam["bad"], "lesion_slices": exam["lesion_slices"],
                           "tear_centres": exam["tear_centres"],
                           **{k: exam[k] for k in ("lesion_scale", "lesion_contrast") if k in exam}}
    for split, per_task in labels.items():
        for task, lines in per_task.items():
            (tmp / f"{split}-{task}.csv").write_text("".join(lines))
    valid_cases = [c for c, t in truth.items() if t["split"] == "valid"]
    (tmp / "valid-paths.csv").write_text(
        "".join(f"{out.name}/valid/{plane}/{case}.npy\n" for case in valid_cases for plane in planes))
    meta = {"generator_version": GENERATOR_VERSION, "generator_sha256": generator_sha256(), "seed": seed, "n_train": n_train, "n_valid": n_valid,
            "render_size": render_size, "label_noise": label_noise, "lesion_scale": lesion_scale,
            "lesion_contrast": lesion_contrast, "style": style, "randomise": randomise, "exams": truth,
            **({"planes": list(planes)} if planes != PLANES else {})}
    (tmp / "phantom-truth.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    write_anatomy(tmp / ANATOMY, anatomy)
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out)
    return out


class _Serial:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def imap(fn, items, chunksize=1):
        return map(fn, items)


def default_phantom(progress=True, cache=None, **overrides):
    """The project's default dataset (or a variant: other rung, style, size), generated on first use
    into the cache folder (`cache`, default CACHE); the folder name holds every parameter, so a
    variant never reuses another, and a folder made by other generator code is made again."""
    params = {**DEFAULTS, **overrides}
    key = "phantom-v{}-seed{seed}-n{n_train}+{n_valid}-r{render_size}-noise{label_noise}".format(
        GENERATOR_VERSION, **params)
    if (params["lesion_scale"], params["lesion_contrast"]) != (1.0, 1.0):
        key += "-lesion{lesion_scale}x{lesion_contrast}".format(**params)
    if params["style"] != "anatomical":
        key += "-" + params["style"]
    if params["randomise"]:
        key += "-randomised"
    if tuple(params.get("planes", PLANES)) != PLANES:
        key += "-" + "+".join(params["planes"])
    path = Path(cache or CACHE) / key / "MRNet-v1.0"
    truth = path / "phantom-truth.json"
    if not truth.is_file():
        print(f"phantom: generating the default dataset into {path} (first use only)")
        write_phantom(path, progress=progress, **params)
    elif json.loads(truth.read_text()).get("generator_sha256") != generator_sha256():
        print(f"phantom: {path} was made by other generator code; generating it again")
        write_phantom(path, progress=progress, **params)
    return path


def read_truth(data_dir):
    """The generator's own record of findings and bad stacks, for tests and explanations."""
    path = Path(data_dir) / "phantom-truth.json"
    return json.loads(path.read_text()) if path.is_file() else None
