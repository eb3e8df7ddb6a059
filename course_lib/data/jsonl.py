"""Reading JSONL files row by row against a schema, with errors that say where and what.

Every row is checked before anyone trains on it: a malformed row fails with
the file, the line number, the field and what was expected.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import Any


class DataValidationError(ValueError):
    """A data file that does not match its schema."""


@dataclass(frozen=True)
class FieldRule:
    """What one field must hold, as a check and a description for error messages."""

    check: Callable[[Any], bool]
    expected: str


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _texts(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_text(v) for v in value)


@dataclass(frozen=True)
class RowRule:
    """A rule across fields of one row (e.g. two answers that must differ), reported on ``field``."""

    check: Callable[[dict[str, Any]], bool]
    field: str
    expected: str | Callable[[dict[str, Any]], str]  # a text, or one computed from the row (e.g. the right total)

    def expectation(self, row: dict[str, Any]) -> str:
        """What the field should have held, for the error message."""
        return self.expected(row) if callable(self.expected) else self.expected


TEXT = FieldRule(_text, "a non-empty string")
TEXTS = FieldRule(_texts, "a non-empty list of non-empty strings")
RAW_TEXT = FieldRule(lambda v: isinstance(v, str), "a string (raw logs may hold empty ones)")


def validate_row(row: Any, schema: dict[str, FieldRule], where: str,
                 row_rules: Sequence[RowRule] = ()) -> dict[str, Any]:
    """The row itself if it matches the schema and the row rules; else an error that starts with ``where``."""
    if not isinstance(row, dict):
        raise DataValidationError(f"{where}: expected a JSON object, got {type(row).__name__}.")
    for name, rule in schema.items():
        if name not in row:
            raise DataValidationError(f"{where}: missing field '{name}' (expected {rule.expected}).")
        if not rule.check(row[name]):
            raise DataValidationError(f"{where}: field '{name}': expected {rule.expected}, got {row[name]!r}.")
    extra = sorted(set(row) - set(schema))
    if extra:
        raise DataValidationError(
            f"{where}: unexpected field '{extra[0]}'. Allowed fields: {', '.join(schema)}."
        )
    for rule in row_rules:
        if not rule.check(row):
            raise DataValidationError(
                f"{where}: field '{rule.field}': expected {rule.expectation(row)}, got {row[rule.field]!r}.")
    return row


def read_jsonl(path: Path, rules: dict[str, FieldRule], row_rules: Sequence[RowRule] = ()) -> list[dict[str, Any]]:
    """All rows of a JSONL file, each validated against ``rules`` (field -> rule) and ``row_rules``; ids must be unique."""
    rows: list[dict[str, Any]] = []
    first_line_of_id: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path}, line {number}"
        if not line.strip():
            raise DataValidationError(f"{where}: empty line. Each line must hold one JSON object.")
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataValidationError(f"{where}: not valid JSON ({error.msg} at column {error.colno}).") from None
        validate_row(row, rules, where, row_rules)
        if row["id"] in first_line_of_id:
            raise DataValidationError(
                f"{where}: field 'id': {row['id']!r} already used on line {first_line_of_id[row['id']]}."
            )
        first_line_of_id[row["id"]] = number
        rows.append(row)
    return rows
