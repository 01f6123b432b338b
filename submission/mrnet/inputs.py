"""The scoring input: a header-less list of .npy paths, three per exam, in any order.

Exams are grouped by file stem, plane by parent folder, kept in order of first appearance. Every
line is checked (npy header only, plus values for non-uint8 arrays) before anything is predicted,
and every problem is reported with its line number.
"""

from dataclasses import dataclass, field
from pathlib import Path

from mrnet.contract import PLANES
from mrnet.problems import InputError, Problem
from mrnet.series import check_series


@dataclass
class Exam:
    key: str
    line: int  # first line that names it
    series: dict = field(default_factory=dict)  # plane -> (path, header info)


def read_input(csv_path, check_files=True):
    """Return [Exam] in order of first appearance, or raise InputError listing every problem.

    `check_files=False` groups the lines only (header info None): what scoring a predictions file
    needs, where the series themselves may not be on the scorer's machine.
    """
    csv_path = Path(csv_path)
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError([Problem(str(csv_path), f"cannot read input list ({e})")], "input") from None
    exams, problems, seen = {}, [], {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        entry = raw.strip().strip('"')
        if not entry:
            continue
        where = f"{csv_path}:{lineno}"
        path = Path(entry)
        plane = path.parent.name
        if plane not in PLANES:
            problems.append(Problem(where, f"{entry}: parent folder {plane!r} is not a plane ({', '.join(PLANES)})"))
            continue
        key = path.stem
        exam = exams.setdefault(key, Exam(key, lineno))
        if plane in exam.series:
            problems.append(Problem(where, f"{entry}: exam {key} already has a {plane} series "
                                           f"(line {seen[(key, plane)]})"))
            continue
        seen[(key, plane)] = lineno
        info, reason = check_series(path, strict_uint8=False) if check_files else (None, None)
        if reason:
            problems.append(Problem(where, f"{entry}: {reason}"))
            continue
        exam.series[plane] = (path, info)
    for exam in exams.values():
        missing = [p for p in PLANES if p not in exam.series and (exam.key, p) not in seen]
        if missing:
            problems.append(Problem(f"{csv_path}:{exam.line}", f"exam {exam.key} has no {' or '.join(missing)} series"))
    if not exams and not problems:
        problems.append(Problem(str(csv_path), "no series listed; expected one .npy path per line"))
    if problems:
        raise InputError(problems, str(csv_path))
    return list(exams.values())
