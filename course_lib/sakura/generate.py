"""Writes every Sakura Sushi data set under ``data/``: ``python -m course_lib.sakura.generate`` (or ``make data``).

The top of the Sakura package: it runs the question generators, the raw-log
generator and the cleaning pipeline, so each data set has exactly one builder
here and the files a reader opens are what the code produces.
"""

import argparse
import json
from pathlib import Path
from typing import Any, Callable

from course_lib.core.paths import data_dir
from course_lib.sakura.cleaning import prepare_training_set
from course_lib.sakura.logs import customer_message_logs
from course_lib.sakura.menu import menu_document
from course_lib.sakura.questions import SPLITS, intent_rows, order_rows, preference_rows, probe_rows, qa_rows


def clean_train_rows() -> list[dict[str, Any]]:
    """qa_train: the raw logs through lesson 04's pipeline, decontaminated against validation and test."""
    held_out = [row["prompt"] for split in SPLITS if split != "train" for row in qa_rows(split)]
    return prepare_training_set(customer_message_logs(), held_out)[0]


BUILDERS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "qa_train": clean_train_rows,
    **{f"qa_{split}": (lambda split=split: qa_rows(split)) for split in SPLITS if split != "train"},
    "qa_test_all": lambda: qa_rows("test", every_phrasing=True),
    "raw_messages": customer_message_logs,
    "intents_train": lambda: intent_rows("train", per_template=12),
    "intents_test": lambda: intent_rows("test", per_template=10),
    "preferences_train": lambda: preference_rows("train"),
    "preferences_test": lambda: preference_rows("test"),
    "orders_train": lambda: order_rows("train", count=400),
    "orders_test": lambda: order_rows("test", count=60),
    "general_probe": probe_rows,
}


def write_all(target: Path) -> list[Path]:
    """Write menu.json and every data set as JSONL under ``target``; returns the files written."""
    target.mkdir(parents=True, exist_ok=True)
    written = [target / "menu.json"]
    written[0].write_text(json.dumps(menu_document(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, make_rows in BUILDERS.items():
        path = target / f"{name}.jsonl"
        lines = [json.dumps(row, ensure_ascii=False) for row in make_rows()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate the Sakura Sushi data sets.")
    parser.add_argument("--out", type=Path, default=data_dir(), help="folder to write (default: data/)")
    for path in write_all(parser.parse_args().out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
