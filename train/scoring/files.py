"""The contract's files read back for scoring: a predictions CSV, and the labels of its exams in order.

Any team's predictions file works: the rows pair with the input list's exams by position, as the
official scorer pairs them; a malformed line stops with file:line and what is wrong.
"""

from pathlib import Path


def read_predictions(path, n_exams):
    """(n, 3) probabilities; any malformed line stops with file:line and what is wrong."""
    import numpy as np

    rows = []
    lines = Path(path).read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for number, line in enumerate(lines, 1):
        try:
            values = [float(v) for v in line.split(",")]
        except ValueError:
            values = []
        if len(values) != 3 or not all(np.isfinite(values)):
            raise SystemExit(f"evaluate: {path}:{number}: {line!r} is not three numbers (abnormal,acl,meniscus)")
        rows.append(values)
    if len(rows) != n_exams:
        raise SystemExit(f"evaluate: {path}: {len(rows)} prediction lines for {n_exams} exams in the input list")
    return np.array(rows)


def exam_labels(exams, labels_dir, split_override):
    """Labels in exam order; every exam must be in the label files."""
    import numpy as np

    from mrnet.contract import TASKS
    from mrnet.layout import case_id, read_labels
    from mrnet.problems import InputError

    tables, rows = {}, []
    for exam in exams:
        first = next(iter(exam.series.values()))[0]
        split = split_override or Path(first).parent.parent.name
        if split not in tables:
            try:
                tables[split] = read_labels(labels_dir, (split,)).loc[split]
            except InputError as e:
                raise SystemExit(f"evaluate: {e}\n(pass --labels-dir, or --split when the paths do not name it)")
        table, case = tables[split], case_id(exam.key)
        if case not in table.index:
            raise SystemExit(f"evaluate: exam {exam.key} (input line {exam.line}) is not in the {split} labels "
                             f"in {labels_dir}")
        rows.append(table.loc[case, list(TASKS)].to_numpy(int))
    return np.array(rows)
