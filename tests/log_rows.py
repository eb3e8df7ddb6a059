"""Raw log rows for the cleaning and deduplication tests, built in one place."""

from typing import Any

from course_lib.sakura.menu import house_voice
from course_lib.sakura.questions import qa_rows

HOUSE_ANSWER = house_voice("We accept cash and all major cards.")
EVAL_PROMPTS = [row["prompt"] for split in ("validation", "test") for row in qa_rows(split)]


def log_row(message: str, reply: str = HOUSE_ANSWER, row_id: str = "m", customer: str = "") -> dict[str, Any]:
    """One raw log row with the given message and reply (the other fields fixed)."""
    return {"id": row_id, "received_at": "2024-03-01T12:00", "channel": "email", "customer": customer,
            "message": message, "staff_reply": reply}


def log_rows(*messages: str) -> list[dict[str, Any]]:
    """Rows m0, m1, ... with these messages and the house answer."""
    return [log_row(m, row_id=f"m{i}") for i, m in enumerate(messages)]
