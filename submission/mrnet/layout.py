"""The MRNet-v1.0 folder layout: where series and labels live, read into one exams x labels table.

Every reader here accepts the real layout unchanged: header-less label CSVs, zero-padded ids given
as strings or ints, `split/plane/CASE.npy` series.
"""

from pathlib import Path

import pandas as pd

from mrnet.contract import PLANES, SPLITS, TASKS
from mrnet.problems import InputError, Problem
from mrnet.series import open_series


def case_id(value) -> str:
    """'7', 7 and '0007' all name case 0007; anything else is not a case id."""
    text = str(value).strip()
    if not text.isdigit():
        raise ValueError(f"case id {text!r} is not a number")
    return f"{int(text):04d}"


def label_path(data_dir, split, task) -> Path:
    return Path(data_dir) / f"{split}-{task}.csv"


def series_path(data_dir, split, plane, case) -> Path:
    return Path(data_dir) / split / plane / f"{case_id(case)}.npy"


def parse_label_file(path):
    """Return ({case: label}, [Problem]) reading `case,label` lines with no header."""
    labels, problems = {}, []
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return labels, [Problem(str(path), "label file missing")]
    except (OSError, UnicodeDecodeError) as e:
        return labels, [Problem(str(path), f"label file unreadable ({e})")]
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 2:
            problems.append(Problem(str(path), f"expected 'case,label', got {line!r}", lineno))
            continue
        try:
            case = case_id(fields[0])
        except ValueError as e:
            hint = " (label files have no header line)" if lineno == 1 else ""
            problems.append(Problem(str(path), f"{e}{hint}", lineno))
            continue
        if fields[1] not in ("0", "1"):
            problems.append(Problem(str(path), f"label {fields[1]!r} for case {case} is not 0 or 1", lineno))
            continue
        if case in labels:
            problems.append(Problem(str(path), f"case {case} listed twice", lineno))
            continue
        labels[case] = int(fields[1])
    return labels, problems


def read_split_labels(data_dir, split):
    """One row per case of the split, one column per task; problems instead of guesses."""
    per_task, problems = {}, []
    for task in TASKS:
        labels, found = parse_label_file(label_path(data_dir, split, task))
        per_task[task] = labels
        problems += found
    all_cases = sorted(set().union(*[set(v) for v in per_task.values()]))
    for task in TASKS:
        if not per_task[task] and any(p.path == str(label_path(data_dir, split, task)) for p in problems):
            continue  # the whole file is already reported
        for case in all_cases:
            if case not in per_task[task]:
                problems.append(Problem(str(label_path(data_dir, split, task)),
                                        f"case {case} has no {task} label (other label files list it)"))
    table = pd.DataFrame(
        {task: [per_task[task].get(c, -1) for c in all_cases] for task in TASKS},
        index=pd.Index(all_cases, name="case"),
    )
    return table, problems


def read_labels(data_dir, splits=SPLITS):
    """Exams x labels for the given splits, indexed by (split, case). Raises InputError."""
    tables, problems = [], []
    for split in splits:
        table, found = read_split_labels(data_dir, split)
        problems += found
        tables.append(table.assign(split=split).set_index("split", append=True).reorder_levels(["split", "case"]))
    if problems:
        raise InputError(problems, f"labels under {data_dir}")
    return pd.concat(tables)


def series_cases(data_dir, split, plane):
    """Case ids that have a file in split/plane (names that are not case ids are ignored here)."""
    folder = Path(data_dir) / split / plane
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.npy") if p.stem.isdigit())


def load_exam(data_dir, split, case):
    """One exam as {plane: uint8 (slices, 256, 256)}, memory-mapped."""
    return {plane: open_series(series_path(data_dir, split, plane, case)) for plane in PLANES}
