"""What pretrain.py and localise.py share: the randomised phantom corpus they learn from, the folder
of per-plane weights they write (whole or not at all, with a manifest that hashes every file), and
the cached copy fit.py asks for on first use.

The corpus is phantom exams of a seed of their own (CORPUS_SEED), so it never holds an exam fit.py
trains or is scored on, drawn with phantom.exam.make_exam(randomise=True): random contrast, coil,
noise and blur per stack, wider knee proportions and pose, soft-tissue clutter, lesions from the
ladder's faint end and beyond. A network that saw every plausible rendering cannot lean on one
(after SynthSeg, Billot et al. 2023).
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

CORPUS_SEED = 7919  # fit.py's phantom uses seed 0
STYLES = ("anatomical", "geometric")


def add_corpus_arguments(ap):
    ap.add_argument("--corpus-styles", nargs="+", default=list(STYLES), choices=STYLES,
                    help="drawings of the knee in the corpus; leave out the style you evaluate on (%(default)s)")
    ap.add_argument("--corpus-exams", type=int, default=120, help="training exams per style (%(default)s)")
    ap.add_argument("--corpus-seed", type=int, default=CORPUS_SEED)
    ap.add_argument("--corpus-dirs", type=Path, nargs="+",
                    help="learn from these phantom folders instead (any make_phantom.py output of this version: "
                         "anatomy and tear truth beside the series), e.g. a larger corpus made once")


def artefact_parser(description, add_arguments):
    """The flags of a command that trains per-plane weights on the corpus (pretrain.py, localise.py):
    --out, --planes, the corpus's, `add_arguments`'s own, and the compute flags fit.py has too."""
    import argparse

    from learning.recipe import PLANES, add_compute_arguments

    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder to write the weights and manifest into")
    ap.add_argument("--planes", nargs="+", default=list(PLANES), choices=PLANES)
    add_corpus_arguments(ap)
    add_arguments(ap)
    add_compute_arguments(ap)
    ap.set_defaults(strategy="default", cpu_replicas=1)  # what setup_devices reads: one process per plane
    return ap


def corpus(args):
    """The randomised phantom folders, one per style (generated on first use into the cache), or
    --corpus-dirs."""
    from phantom.writer import default_phantom

    if args.corpus_dirs:
        return list(args.corpus_dirs)
    return [default_phantom(progress=not args.quiet, seed=args.corpus_seed, n_train=args.corpus_exams,
                            n_valid=max(10, args.corpus_exams // 5), style=style, randomise=True)
            for style in args.corpus_styles]


def corpus_record(corpus_dirs):
    """What a manifest says of the corpus, from the folders' own truth: enough to know which exams,
    seeds and styles a network saw (so that none of them is what it is then evaluated on)."""
    truth = [json.loads((d / "phantom-truth.json").read_text()) for d in corpus_dirs]
    return {"generator_version": truth[0]["generator_version"], "seeds": [t["seed"] for t in truth],
            "styles": [t["style"] for t in truth], "randomised": [t["randomise"] for t in truth],
            "exams": {"train": sum(t["n_train"] for t in truth), "valid": sum(t["n_valid"] for t in truth)}}


def train_plane_of(args, plane, train, corpus_dirs, out_dir, devices=None):
    """Runs in a plane's own process: TensorFlow's start-up kept quiet (mrnet/runtime.py) before the
    module that trains, named 'module:function' by `train`, imports Keras."""
    import importlib

    from mrnet import runtime

    runtime.configure(args.verbose)
    module, function = train.split(":")
    getattr(importlib.import_module(module), function)(args, plane, corpus_dirs, out_dir, devices)


def write_artefact(args, train, corpus_dirs, what, model, training, measured):
    """Train every plane of args.planes with `train` ('module:function', called as function(args,
    plane, corpus_dirs, folder, devices)), side by side in processes of their own on a CPU as fit.py
    does, then write `args.out`: the `<plane>.weights.h5` files and manifest.json (what, planes,
    model, corpus, training, the files' sha256, and {key: each plane's <plane>/<file>} for every
    (key, file) of `measured`). Built in a temporary folder and renamed into place."""
    from learning.distributed import setup_devices
    from learning.parallel import own_processes, plane_jobs, train_in_processes

    tmp = args.out.with_name(args.out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    devices = setup_devices(args)
    jobs = plane_jobs(args.jobs, devices, len(args.planes), "compact")
    if own_processes(devices):
        train_in_processes(train_plane_of, args, args.planes, tmp, jobs, extra=(train, corpus_dirs, tmp),
                           epochs=args.epochs + getattr(args, "refiner_epochs", 0))
    else:
        for plane in args.planes:
            train_plane_of(args, plane, train, corpus_dirs, tmp, devices)
    manifest = {"what": what, "planes": list(args.planes), "model": model,
                "corpus": corpus_record(corpus_dirs), "training": training,
                **{key: {p: json.loads((tmp / p / name).read_text()) for p in args.planes}
                   for key, name in measured.items()},
                "files": {f"{p}.weights.h5": hashlib.sha256((tmp / f"{p}.weights.h5").read_bytes()).hexdigest()
                          for p in args.planes}}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, args.out)
    return args.out


def compute_flags(args):
    """A run's compute flags as a command line, for an artefact it makes on first use: the artefact
    trains on this machine as the run does (its processes, threads, XLA, allocator, verbosity)."""
    flags = ["--jobs", str(args.jobs), "--threads", str(args.threads), "--xla", args.xla, "--allocator", args.allocator]
    return flags + (["--quiet"] if args.quiet else []) + (["--verbose"] if args.verbose else [])


def cached(kind, key, build):
    """The cache's folder for an artefact of `kind` whose shape is `key` (a JSON-able dict): made by
    `build(folder)` on first use, reused after (fit.py --init synthetic, fit.py --crops)."""
    from phantom.writer import CACHE

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    folder = CACHE / f"{kind}-{digest}"
    if not (folder / "manifest.json").is_file():
        print(f"{kind}: none cached for this shape yet; training it into {folder} (first use only)", flush=True)
        build(folder)
    return folder


def check_files(folder, plane, who):
    """A weights file of an artefact folder, after checking the manifest names the plane and holds its
    sha256: (manifest, path). Raises SystemExit saying what to do."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"{who}: {folder}: no readable manifest.json ({e}); give a folder it wrote")
    path = folder / f"{plane}.weights.h5"
    if plane not in manifest["planes"] or not path.is_file():
        raise SystemExit(f"{who}: {folder}: no weights for plane {plane}; train it with --planes {plane}")
    if hashlib.sha256(path.read_bytes()).hexdigest() != manifest["files"][path.name]:
        raise SystemExit(f"{who}: {folder}: {path.name} does not match its manifest's sha256; train it again")
    return manifest, path
