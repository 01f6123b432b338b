"""Check a whole dataset before anything trains on it, and report every problem at once."""

from pathlib import Path

from mrnet.contract import PLANES, SPLITS
from mrnet.layout import read_split_labels, series_cases, series_path
from mrnet.problems import InputError, Problem
from mrnet.series import check_series


def dataset_problems(data_dir, splits=SPLITS):
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return [Problem(str(data_dir), "data directory not found; pass --data-dir path/to/MRNet-v1.0")]
    problems = []
    for split in splits:
        table, found = read_split_labels(data_dir, split)
        problems += found
        labelled = set(table.index)
        for plane in PLANES:
            on_disk = set(series_cases(data_dir, split, plane))
            for case in sorted(labelled - on_disk):
                problems.append(Problem(str(series_path(data_dir, split, plane, case)),
                                        f"case {case} has labels but no {plane} series"))
            for case in sorted(on_disk - labelled):
                problems.append(Problem(str(series_path(data_dir, split, plane, case)),
                                        f"series of case {case} has no labels in {split}-*.csv"))
            for case in sorted(on_disk & labelled):
                path = series_path(data_dir, split, plane, case)
                _, reason = check_series(path, strict_uint8=True)
                if reason:
                    problems.append(Problem(str(path), reason))
    return problems


def validate_dataset(data_dir, splits=SPLITS):
    """Raise InputError listing everything wrong; return quietly when the dataset is usable."""
    problems = dataset_problems(data_dir, splits)
    if problems:
        raise InputError(problems, f"dataset {data_dir}")
