"""One way to report bad input: every problem at once, each as `path:line: reason`."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.reason}"


class InputError(Exception):
    """Raised with the full list so a user fixes everything in one pass, not one error per run."""

    def __init__(self, problems, what="input"):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in {what}:"
        super().__init__("\n".join([head] + [f"  {p}" for p in self.problems]))
