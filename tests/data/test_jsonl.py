"""JSONL validation: every malformed row is named by file, line and field."""

import json
from pathlib import Path

import pytest

from course_lib.data.jsonl import DataValidationError, read_jsonl
from course_lib.sakura.datasets import SCHEMAS


def _write(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "intents_bad.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


GOOD = json.dumps({"id": "a", "text": "Do you deliver?", "label": "order"})


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"id": "b", "text": "hi", "label": "order"', r"line 2: not valid JSON"),
        ('{"id": "b", "label": "order"}', r"line 2: missing field 'text' \(expected a non-empty string\)"),
        ('{"id": "b", "text": "hi", "label": "refund"}', r"line 2: field 'label': expected one of menu_question, .*got 'refund'"),
        ('{"id": "b", "text": "  ", "label": "order"}', r"line 2: field 'text': expected a non-empty string"),
        ('{"id": "b", "text": "hi", "label": "order", "score": 1}', r"line 2: unexpected field 'score'"),
        ('{"id": "a", "text": "hi", "label": "order"}', r"line 2: field 'id': 'a' already used on line 1"),
        ("", r"line 2: empty line"),
        ('["b", "hi", "order"]', r"line 2: expected a JSON object, got list"),
    ],
)
def test_malformed_rows_name_file_line_and_field(tmp_path: Path, bad_line: str, message: str) -> None:
    path = _write(tmp_path, [GOOD, bad_line])
    with pytest.raises(DataValidationError, match=message) as error:
        read_jsonl(path, SCHEMAS["intents"])
    assert str(path) in str(error.value)
