"""A reader's marks on their own series, and the localiser fine-tuned on them.

The localiser learns from a phantom only; a site's protocol, zoom and artefacts differ from it, and
on real MRNet series a phantom-taught localiser was measured to miss (windows on the notch and
outside the joint). A radiologist points at a meniscal horn in seconds, and a few marked cases steer
a synthetically trained network (Learn2Synth, 2024). So a marks file holds, for some slices of some
exams, where each place is or that it is absent, and `fine_tune` teaches the localiser from them,
mixed with its own corpus so that it keeps what the phantom taught.

The format: JSON lines, one mark per line (so a problem is reported as file:line), in the anatomy
truth's conventions (phantom/landmarks.py):

    {"case": "1130", "plane": "sagittal", "slice": 14, "place": "meniscus A", "row": 151.5, "col": 104.0}
    {"case": "1130", "plane": "sagittal", "slice": 14, "place": "meniscus B", "row": 148.0, "col": 163.0}
    {"case": "1130", "plane": "sagittal", "slice": 14, "place": "ACL", "absent": true}

- case: the case id (the series' file name, zero-padded or not), in train/ or valid/ of the data;
- plane: sagittal, coronal or axial; slice: 0-based index into the series (the montages and the
  viewer number slices from 1);
- place: one of mrnet.contract.PLACES. On a sagittal slice "meniscus A" is the anterior horn (image
  left), "meniscus B" the posterior one; on coronal and axial slices A is the meniscus on the image's
  left, B the one on its right;
- row, col: the structure's centre in pixels of the 256 x 256 slice (row 0 at the top), or
  "absent": true where the slice does not show it;
- optional "reader" and "note" (free text, kept with the mark).

A marked slice states every place (a point or absent): a place left unmarked would be read as
absent and teach the localiser a wrong "no". Every problem in a file is reported at once, each as
file:line: reason, and nothing is trained or written.
"""

import json
from pathlib import Path

import numpy as np

from mrnet.contract import PLACES, PLANES, SPLITS, SLICE_SHAPE

KEYS = {"case", "plane", "slice", "place"}
OPTIONAL = {"row", "col", "absent", "reader", "note"}


def _slice_counts(data_dir):
    """{(plane, case): (split, slices)} of every series under data_dir, from the headers alone."""
    from mrnet.layout import series_cases, series_path
    from mrnet.series import header_info

    counts = {}
    for split in SPLITS:
        for plane in PLANES:
            for case in series_cases(data_dir, split, plane):
                try:
                    counts[(plane, case)] = (split, header_info(series_path(data_dir, split, plane, case))[0][0])
                except ValueError:
                    continue  # an unreadable series: a mark on it is refused as "not in the data"
    return counts


def _problem(mark, counts, line, seen):
    """The reason one parsed line is not a usable mark, or None (then `mark` is normalised in place)."""
    from mrnet.layout import case_id

    if not isinstance(mark, dict):
        return "not a JSON object: write one mark per line, as {\"case\": ..., \"plane\": ..., ...}"
    missing, unknown = KEYS - set(mark), set(mark) - KEYS - OPTIONAL
    if missing:
        return f"no {', '.join(sorted(missing))}: every mark names case, plane, slice and place"
    if unknown:
        return f"unknown key(s) {', '.join(sorted(unknown))}: a mark holds {', '.join(sorted(KEYS | OPTIONAL))}"
    if mark["plane"] not in PLANES:
        return f"plane {mark['plane']!r} is not one of {', '.join(PLANES)}"
    if mark["place"] not in PLACES:
        return f"place {mark['place']!r} is not one of {', '.join(PLACES)}"
    try:
        mark["case"] = case_id(mark["case"])
    except (TypeError, ValueError):
        return f"case {mark['case']!r} is not a case id (a number, as the series' file name)"
    if (mark["plane"], mark["case"]) not in counts:
        return f"case {mark['case']} has no {mark['plane']} series in the data (train/ or valid/)"
    slices = counts[(mark["plane"], mark["case"])][1]
    if not isinstance(mark["slice"], int) or isinstance(mark["slice"], bool) or not 0 <= mark["slice"] < slices:
        return f"slice {mark['slice']!r} is not in case {mark['case']}'s {mark['plane']} series (0 to {slices - 1})"
    point = "row" in mark or "col" in mark
    if mark.get("absent") is True and point:
        return "both a point and absent: a place is either on the slice or not"
    if mark.get("absent", False) is not True and not point:
        return "neither a point (row, col) nor \"absent\": true"
    if "absent" in mark and not isinstance(mark["absent"], bool):
        return f"absent {mark['absent']!r}: write true, or leave it out and give row and col"
    if point:
        for axis, size in zip(("row", "col"), SLICE_SHAPE):
            value = mark.get(axis)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < size:
                return f"{axis} {value!r} is outside the slice (0 to {size}, pixels of the 256 x 256 slice)"
    key = (mark["case"], mark["plane"], mark["slice"], mark["place"])
    if key in seen:
        return f"{mark['place']} on slice {mark['slice']} of case {mark['case']} ({mark['plane']}) is marked " \
               f"already on line {seen[key]}"
    seen[key] = line
    return None


def read_marks(path, data_dir):
    """The marks of a file, checked against the data: [mark dict with its "line"]. Raises
    mrnet.problems.InputError with every problem, each as file:line: reason."""
    from mrnet.problems import InputError, Problem

    path = Path(path)
    if not path.is_file():
        raise InputError([Problem(str(path), "no such file: write the marks as JSON lines (README: Marks)")], "marks")
    counts = _slice_counts(data_dir)
    problems, marks, seen = [], [], {}
    for line, text in enumerate(path.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            mark = json.loads(text)
        except json.JSONDecodeError as e:
            problems.append(Problem(str(path), f"not JSON ({e.msg} at column {e.colno})", line))
            continue
        reason = _problem(mark, counts, line, seen)
        if reason:
            problems.append(Problem(str(path), reason, line))
        else:
            marks.append({**mark, "line": line})
    slices = {}
    for mark in marks:
        slices.setdefault((mark["case"], mark["plane"], mark["slice"]), []).append(mark)
    for (case, plane, k), marked in slices.items():
        lacking = [p for p in PLACES if p not in {m["place"] for m in marked}]
        if lacking:
            problems.append(Problem(str(path), f"slice {k} of case {case} ({plane}) has no mark for "
                                               f"{', '.join(lacking)}: mark it, or mark it absent", marked[0]["line"]))
    if not marks and not problems:
        problems.append(Problem(str(path), "no marks in the file"))
    if problems:
        raise InputError(sorted(problems, key=lambda p: p.line or 0), f"marks {path}")
    for mark in marks:
        mark["split"] = counts[(mark["plane"], mark["case"])][0]
    return marks


def marked_slices(marks, data_dir, plane):
    """One plane's marked slices as the localiser learns from them: (uint8 (N, 256, 256), targets
    (N, K, 3): present, row, col, case per slice), in case and slice order."""
    from mrnet.layout import series_path
    from mrnet.series import open_series

    by_slice = {}
    for mark in marks:
        if mark["plane"] == plane:
            by_slice.setdefault((mark["case"], mark["slice"], mark["split"]), {})[mark["place"]] = mark
    keys = sorted(by_slice)
    slices = np.zeros((len(keys), *SLICE_SHAPE), np.uint8)
    targets = np.zeros((len(keys), len(PLACES), 3), np.float32)
    for i, (case, k, split) in enumerate(keys):
        slices[i] = open_series(series_path(data_dir, split, plane, case))[k]
        for p, place in enumerate(PLACES):
            mark = by_slice[(case, k, split)][place]
            if not mark.get("absent"):
                targets[i, p] = (1.0, mark["row"], mark["col"])
    return slices, targets, np.array([case for case, _, _ in keys])


def held_out_cases(cases, share, seed):
    """The marked exams kept out of the fine-tuning, to measure it on: `share` of them (at least one
    where there are two or more and share > 0), drawn by the seed."""
    cases = sorted(set(cases))
    n = 0 if len(cases) < 2 or share <= 0 else min(len(cases) - 1, max(1, round(share * len(cases))))
    return sorted(np.random.default_rng(seed).permutation(cases)[:n].tolist())


def _base_corpus(manifest):
    """The Corpus section a localiser folder's manifest records it learnt from."""
    from learning.recipe import Corpus

    recorded = manifest.get("configuration", {}).get("corpus")
    if not recorded:
        return Corpus()
    return Corpus(styles=tuple(recorded["styles"]), exams=recorded["exams"], seed=recorded["seed"],
                  dirs=tuple(Path(d) for d in recorded.get("dirs", ())))


def fine_tune(config, made_by="python train/localise.py --marks"):
    """Fine-tune a localiser folder on a marks file (learning/recipe.MarksConfig) and write config.out,
    whole or not at all: every plane of the base localiser, those with marks fine-tuned on their
    marked slices of the not-held-out exams mixed with corpus slices. The manifest records the base,
    the marks (file, sha256, counts) and the precision on the held-out marked exams before and after."""
    import hashlib
    import shutil
    import tempfile
    import time
    from dataclasses import replace

    from learning.artefacts import FORMAT_VERSION, SHIPPED, check_files, corpus_dirs, corpus_record
    from learning.distributed import setup_devices
    from learning.localiser import fit_localiser, load_anatomy_slices, load_localiser, locate, precision, \
        precision_text
    from learning.recipe import Corpus, LocaliserTraining, to_dict
    from mrnet.bundle import write_folder

    base_dir = SHIPPED["localiser"] if config.localiser == "shipped" else Path(config.localiser)
    marks = read_marks(config.marks, config.data_dir)
    planes = [p for p in PLANES if any(m["plane"] == p for m in marks)]
    for plane in planes:
        base, _ = check_files(base_dir, plane, "localise --marks")  # refused before any training
    devices = setup_devices(config.compute, seed=config.seed)
    # the base's own corpus unless one is asked for: a corpus of another style would teach the
    # network more than the marks do, and a figure said to be on an unseen style would not be
    corpus = config.corpus if config.corpus != Corpus() else _base_corpus(base)
    dirs = corpus_dirs(corpus, config.compute.quiet) if config.corpus_share > 0 else []
    training = replace(LocaliserTraining(), epochs=config.epochs, refiner_epochs=config.refiner_epochs, lr=config.lr,
                       seed=config.seed)
    rng = np.random.default_rng(config.seed)
    record, measured = {}, {}
    with tempfile.TemporaryDirectory(dir=Path(config.out).parent if Path(config.out).parent.is_dir() else None) as tmp:
        work = Path(tmp)
        for plane in planes:
            start = time.perf_counter()
            slices, targets, cases = marked_slices(marks, config.data_dir, plane)
            held = held_out_cases(cases, config.hold_out, config.seed)
            keep = ~np.isin(cases, held)
            if dirs:
                corpus, corpus_targets, _ = load_anatomy_slices(dirs, plane, "train")
            else:  # --corpus-share 0: the marks alone
                corpus, corpus_targets = slices[:0], targets[:0]
            n_corpus = min(len(corpus), int(round(keep.sum() * config.corpus_share / (1 - config.corpus_share))))
            drawn = rng.choice(len(corpus), n_corpus, replace=False)
            model = load_localiser(base_dir, plane)
            before = precision(*locate(model, slices[~keep]), targets[~keep]) if held else None
            tuned = fit_localiser(base["model"], training, devices, np.concatenate([slices[keep], corpus[drawn]]),
                                  np.concatenate([targets[keep], corpus_targets[drawn]]), work / "logs" / plane,
                                  start=model, quiet=config.compute.quiet)
            tuned.save_weights(str(work / f"{plane}.weights.h5"))
            after = precision(*locate(tuned, slices[~keep]), targets[~keep]) if held else None
            seconds = time.perf_counter() - start
            record[plane] = {"marked_exams": len(set(cases)), "marked_slices": int(len(slices)),
                             "marks": int(len(slices) * len(PLACES)), "held_out_exams": held,
                             "fine_tuned_on": {"marked_slices": int(keep.sum()), "corpus_slices": int(n_corpus)},
                             "seconds": round(seconds, 1)}
            measured[plane] = {"held-out marks, before": before, "held-out marks, after": after}
            if held:
                print(f"[{plane}] on {len(held)} held-out marked exams, before: {precision_text(before)}\n"
                      f"[{plane}] after fine-tuning on {len(set(cases)) - len(held)}: {precision_text(after)}", flush=True)
            else:
                why = "--hold-out 0" if config.hold_out <= 0 else "mark two or more to measure it"
                print(f"[{plane}] fine-tuned on {len(set(cases))} marked exams; none held out ({why})", flush=True)

        def fill(folder):
            for plane in base["planes"]:
                source = work if plane in planes else base_dir
                shutil.copy2(source / f"{plane}.weights.h5", folder / f"{plane}.weights.h5")

        settings = {**to_dict(config), "out": Path(config.out).name, "marks": Path(config.marks).name,
                    "data_dir": None if config.data_dir is None else Path(config.data_dir).name}
        manifest = {"what": "per-plane localisers of the ACL and the menisci, fine-tuned on a reader's marks",
                    "made_by": made_by, "configuration": settings, "planes": base["planes"], "model": base["model"],
                    "corpus": corpus_record(dirs) if dirs else None,
                    "base": {"folder": base_dir.name, "made_by": base.get("made_by"), "files": base.get("files")},
                    "fine_tuned": {"marks": {"file": Path(config.marks).name,
                                             "sha256": hashlib.sha256(Path(config.marks).read_bytes()).hexdigest()},
                                   "planes": record},
                    "measured": {"precision": measured}}
        write_folder(Path(config.out), fill, manifest, FORMAT_VERSION)
    return Path(config.out)


def write_marks(path, marks):
    """Marks (dicts as read_marks takes them) to a JSON lines file, whole or not at all."""
    import os

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    keep = ("case", "plane", "slice", "place", "row", "col", "absent", "reader", "note")
    tmp.write_text("".join(json.dumps({k: m[k] for k in keep if k in m}) + "\n" for m in marks))
    os.replace(tmp, path)


def truth_marks(data_dir, split, plane, cases, noise_px=2.0, seed=0, every=1):
    """Marks a reader would give, made from a phantom's anatomy truth: every `every`-th slice of
    each case, each present place's centre moved by a Gaussian of noise_px (two readers marking the
    same real slices were 4 px apart), clipped to the slice; what the benchmark and tests mark with."""
    from phantom.landmarks import read_anatomy

    anatomy = read_anatomy(data_dir)
    rng = np.random.default_rng(seed)
    marks = []
    for case in cases:
        truth = anatomy[(plane, case)]
        for k in range(0, len(truth), every):
            for p, place in enumerate(PLACES):
                mark = {"case": case, "plane": plane, "slice": k, "place": place, "reader": "phantom truth"}
                if truth[k, p, 0] > 0:
                    row, col = np.clip(truth[k, p, 1:3] + rng.normal(0, noise_px, 2), 0, 255.9)
                    mark.update(row=round(float(row), 1), col=round(float(col), 1))
                else:
                    mark["absent"] = True
                marks.append(mark)
    return marks
