"""The Sakura Sushi data sets as files: their schemas, validated loaders, and the facts a run teaches.

Every row of every JSONL file under ``data/`` is checked against its schema
(:mod:`course_lib.data.jsonl`) before a lesson sees it, so nothing ever trains
silently on garbage. The files are written by :mod:`course_lib.sakura.generate`.
"""

import json
import random
import re
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from course_lib.core.paths import data_dir
from course_lib.data.jsonl import RAW_TEXT, TEXT, TEXTS, DataValidationError, FieldRule, RowRule, read_jsonl
from course_lib.sakura.logs import CHANNELS
from course_lib.sakura.menu import MENU, order_total
from course_lib.sakura.questions import INTENT_LABELS

if TYPE_CHECKING:
    import datasets

DATASETS = (
    "qa_train", "qa_validation", "qa_test", "qa_test_all", "raw_messages", "intents_train", "intents_test",
    "preferences_train", "preferences_test", "orders_train", "orders_test", "general_probe",
)
_DISHES = {dish.name for dish in MENU}
_MONEY = re.compile(r"\d+\.\d{2}")


def _order_items(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(item, dict) and set(item) == {"dish", "quantity"} and item["dish"] in _DISHES
        and isinstance(item["quantity"], int) and not isinstance(item["quantity"], bool) and 1 <= item["quantity"] <= 20
        for item in value
    )


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

ROW_RULES: dict[str, tuple[RowRule, ...]] = {
    # A pair whose two answers are the same text teaches nothing and would make the reward margin 0 by construction.
    "preferences": (RowRule(lambda row: row["chosen"].strip() != row["rejected"].strip(), "rejected",
                            "an answer different from 'chosen'"),),
    # A verifiable reward is only as good as its answer key: the stated total must be what the items cost.
    "orders": (RowRule(lambda row: Decimal(row["total"]) == order_total(row["items"]), "total",
                       lambda row: f"'{order_total(row['items']):.2f}' (the items' menu prices × quantities)"),),
}


def schema_name(dataset: str) -> str:
    """The schema of a data set: its name without the split suffix ('qa_train' -> 'qa')."""
    for name in SCHEMAS:
        if dataset == name or dataset.startswith(name + "_"):
            return name
    raise DataValidationError(f"No schema for data set '{dataset}'. Known schemas: {', '.join(SCHEMAS)}.")


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
    schema = schema_name(dataset)
    return read_jsonl(data_path(dataset), SCHEMAS[schema], ROW_RULES.get(schema, ()))


def load_data(dataset: str) -> "datasets.Dataset":
    """A data set as a validated ``datasets.Dataset``, e.g. ``load_data('qa_train')``."""
    import datasets  # heavy: only when a Dataset is asked for

    return datasets.Dataset.from_list(load_rows(dataset))


def load_menu() -> dict[str, Any]:
    """The restaurant document (menu, hours, policies, house voice) from data/menu.json."""
    path = data_dir() / "menu.json"
    if not path.exists():
        raise DataValidationError(f"{path} not found. Regenerate the data with `make data`.")
    return json.loads(path.read_text(encoding="utf-8"))


def taught_facts(num_facts: int | None, seed: int) -> set[str]:
    """The reference answers (one per fact) a run teaches and tests: all, or a seeded sample balanced by kind.

    On a CPU, teaching every fact takes too long for a lesson, so the default
    profile teaches a sample and tests on exactly those facts. The sample takes
    the kinds of fact in turn (price, ingredients, allergens, vegetarian, spicy,
    hours, ...), so yes/no kinds cannot dominate a score: a model that always
    answers "No, ... is not vegetarian" gains on one kind only.
    """
    rows = load_rows("qa_test")
    answers = sorted({row["completion"] for row in rows})
    if num_facts is None or num_facts >= len(answers):
        return set(answers)
    rng = random.Random(seed)
    by_kind: dict[str, list[str]] = {}
    for row in sorted(rows, key=lambda r: r["completion"]):
        by_kind.setdefault(row["topic"], []).append(row["completion"])
    queues = {kind: rng.sample(found, len(found)) for kind, found in sorted(by_kind.items(), key=lambda kv: -len(kv[1]))}
    chosen: list[str] = []
    while len(chosen) < num_facts:
        for queue in queues.values():
            if queue and len(chosen) < num_facts:
                chosen.append(queue.pop())
    return set(chosen)


def rows_about(dataset: str, facts: set[str]) -> list[dict[str, Any]]:
    """The rows of a data set whose reference answer is one of ``facts``."""
    return [row for row in load_rows(dataset) if row["completion"] in facts]
