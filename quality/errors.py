"""Errors and warnings raised by the quality gate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DataWarning(UserWarning):
    """Input that passes the gate but costs something (duplicates dropped, text truncated)."""


@dataclass(frozen=True)
class RuleFailure:
    """One broken rule: where it broke, how often, and a few offending rows.

    Attributes:
        file: contract file name, e.g. ``interactions.csv``.
        column: contract column (or ``"*"`` for whole-file rules).
        rule: short rule name, e.g. ``unique``, ``known_user``.
        failing: number of offending rows.
        total: number of rows checked.
        examples: at most five offending rows as dicts (row number included).
        why: the note attached to the rule.
    """

    file: str
    column: str
    rule: str
    failing: int
    total: int
    examples: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    why: str = ""

    def describe(self) -> str:
        head = (
            f"{self.file} column '{self.column}' breaks rule '{self.rule}': "
            f"{self.failing} of {self.total} rows"
        )
        if self.why:
            head += f" ({self.why})"
        lines = [head]
        for ex in self.examples[:5]:
            lines.append(f"    e.g. {_short(ex)}")
        return "\n".join(lines)


def _short(row: dict[str, Any], limit: int = 160) -> str:
    parts = []
    for k, v in row.items():
        s = repr(v)
        if len(s) > 60:
            s = s[:57] + "...'"
        parts.append(f"{k}={s}")
    text = ", ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DataQualityError(Exception):
    """The dataset folder breaks the input contract; nothing downstream ran.

    Attributes:
        folder: the dataset folder that was refused.
        failures: every broken rule, each naming file, column, rule and examples.
        docs_path: index.html of the Data Docs written for this validation, if any.
    """

    def __init__(self, folder: str, failures: list[RuleFailure], docs_path: str | None = None):
        self.folder = str(folder)
        self.failures = list(failures)
        self.docs_path = docs_path
        super().__init__(self._message())

    def _message(self) -> str:
        n = len(self.failures)
        lines = [f"dataset {self.folder} refused by the quality gate: {n} rule(s) broken"]
        lines += [f"  - {f.describe()}" for f in self.failures]
        if self.docs_path:
            lines.append(f"  Data Docs: {self.docs_path}")
        return "\n".join(lines)
