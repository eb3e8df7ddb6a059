"""Validated loading of the course's data sets.

Every row of every JSONL file is checked against its schema before a lesson
sees it: a malformed row fails with the file, the line number, the field and
what was expected, so nothing ever trains silently on garbage.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from course_lib.customer_logs import CHANNELS
from course_lib.paths import data_dir
from course_lib.sakura import DATASETS, INTENT_LABELS, MENU


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


_DISHES = {dish.name for dish in MENU}
_MONEY = re.compile(r"\d+\.\d{2}")


def _order_items(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(item, dict) and set(item) == {"dish", "quantity"} and item["dish"] in _DISHES
        and isinstance(item["quantity"], int) and not isinstance(item["quantity"], bool) and 1 <= item["quantity"] <= 20
        for item in value
    )


TEXT = FieldRule(_text, "a non-empty string")
TEXTS = FieldRule(_texts, "a non-empty list of non-empty strings")
RAW_TEXT = FieldRule(lambda v: isinstance(v, str), "a string (raw logs may hold empty ones)")
_MINUTE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
SCHEMAS: dict[str, dict[str, FieldRule]] = {
    "qa": {"id": TEXT, "topic": TEXT, "prompt": TEXT, "completion": TEXT, "facts": TEXTS},
    "intents": {
        "id": TEXT,
        "text": TEXT,
        "label": FieldRule(lambda v: v in INTENT_LABELS, f"one of {', '.join(INTENT_LABELS)}"),
    },
    "preferences": {
        "id": TEXT, "prompt": TEXT, "chosen": TEXT, "rejected": TEXT,
        "rejection_kind": FieldRule(
            lambda v: v in ("wrong_fact", "rude", "rambling", "unsafe_allergy"),
            "one of wrong_fact, rude, rambling, unsafe_allergy",
        ),
    },
    "orders": {
        "id": TEXT, "question": TEXT,
        "items": FieldRule(_order_items, "a non-empty list of {dish: a menu dish, quantity: 1..20}"),
        "total": FieldRule(lambda v: isinstance(v, str) and bool(_MONEY.fullmatch(v)), "a price like '12.50'"),
    },
    "general_probe": {"id": TEXT, "question": TEXT, "answers": TEXTS},
    "raw_messages": {
        "id": TEXT,
        "received_at": FieldRule(lambda v: isinstance(v, str) and bool(_MINUTE.fullmatch(v)), "a time like '2024-03-01T11:05'"),
        "channel": FieldRule(lambda v: v in CHANNELS, f"one of {', '.join(CHANNELS)}"),
        "customer": RAW_TEXT,
        "message": RAW_TEXT,
        "staff_reply": RAW_TEXT,
    },
}


def schema_name(dataset: str) -> str:
    """The schema of a data set: its name without the split suffix ('qa_train' -> 'qa')."""
    for name in SCHEMAS:
        if dataset == name or dataset.startswith(name + "_"):
            return name
    raise DataValidationError(f"No schema for data set '{dataset}'. Known schemas: {', '.join(SCHEMAS)}.")


def validate_row(row: Any, schema: dict[str, FieldRule], where: str) -> dict[str, Any]:
    """The row itself if it matches the schema; else an error that starts with ``where``."""
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
    return row


def read_jsonl(path: Path, schema: str) -> list[dict[str, Any]]:
    """All rows of a JSONL file, each validated against the named schema; ids must be unique."""
    rules = SCHEMAS[schema]
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
        validate_row(row, rules, where)
        if row["id"] in first_line_of_id:
            raise DataValidationError(
                f"{where}: field 'id': {row['id']!r} already used on line {first_line_of_id[row['id']]}."
            )
        first_line_of_id[row["id"]] = number
        rows.append(row)
    return rows


def data_path(dataset: str) -> Path:
    """The JSONL file of a data set, with a clear error if it is unknown or missing."""
    if dataset not in DATASETS:
        raise DataValidationError(f"Unknown data set '{dataset}'. Known data sets: {', '.join(DATASETS)}.")
    path = data_dir() / f"{dataset}.jsonl"
    if not path.exists():
        raise DataValidationError(f"{path} not found. Regenerate the data with `make data`.")
    return path


def load_rows(dataset: str) -> list[dict[str, Any]]:
    """A data set's validated rows as plain dicts, e.g. ``load_rows('qa_test')``."""
    return read_jsonl(data_path(dataset), schema_name(dataset))


def load_data(dataset: str) -> "datasets.Dataset":  # noqa: F821
    """A data set as a validated ``datasets.Dataset``, e.g. ``load_data('qa_train')``."""
    import datasets

    return datasets.Dataset.from_list(load_rows(dataset))


def load_menu() -> dict[str, Any]:
    """The restaurant document (menu, hours, policies, house voice) from data/menu.json."""
    path = data_dir() / "menu.json"
    if not path.exists():
        raise DataValidationError(f"{path} not found. Regenerate the data with `make data`.")
    return json.loads(path.read_text(encoding="utf-8"))
