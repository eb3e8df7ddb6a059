"""The Shakespeare corpus: every play loaded, no Markdown left, a fixed split by whole plays."""

import re

import pytest

from course_lib.assets.corpora import clean_play, load_plays, shakespeare_splits, split_plays

MARKDOWN = """# A Play

## ACT I

### SCENE I. A room.

_Enter HAMLET and
HORATIO_

**HAMLET**  
To be, or not to be: that is the question:  
__\\[Aside]_ Whether 'tis nobler\\--in the mind &amp; c.

*Exit Horatio.*

**HORATIO**  
*[Drawing his sword.]*  
My lord!
"""


def test_clean_play_keeps_speeches_and_drops_markup() -> None:
    assert clean_play(MARKDOWN) == (
        "HAMLET:\nTo be, or not to be: that is the question:\n"
        "Whether 'tis nobler--in the mind & c.\n\nHORATIO:\nMy lord!\n"
    )


def test_a_malformed_direction_does_not_swallow_the_text() -> None:
    # In the Tempest a bracket is never closed and an underscore is unmatched.
    cleaned = clean_play("_Burthen _\\[dispersedly, within_\n\n**ARIEL**  \nHark, hark!\n\n_Exit_\n")
    assert cleaned == "Burthen\n\nARIEL:\nHark, hark!\n"


@pytest.fixture(scope="module")
def plays() -> dict[str, str]:
    return load_plays()


def test_all_plays_load_without_markup(plays: dict[str, str]) -> None:
    assert len(plays) == 38 and {"hamlet", "macbeth", "the-tempest"} <= set(plays)
    text = "".join(plays.values())
    assert 4_500_000 < len(text) < 5_000_000
    assert not re.search(r"[*_#\[\]\\]|&amp;", text)
    assert "\n\n\n" not in text
    assert plays["hamlet"].count("HAMLET:") > 300
    assert "To be, or not to be: that is the question:" in plays["hamlet"]


def test_split_is_by_whole_plays_and_deterministic(plays: dict[str, str]) -> None:
    train_names, validation_names = split_plays(plays)
    assert validation_names == ["henry-iv-part-1", "love-s-labours-lost", "the-merchant-of-venice"]
    assert not set(train_names) & set(validation_names)
    assert sorted(train_names + validation_names) == sorted(plays)
    train_text, validation_text = shakespeare_splits()
    assert (train_text, validation_text) == shakespeare_splits(plays)
    assert 0.05 < len(validation_text) / (len(train_text) + len(validation_text)) < 0.12
    assert plays["the-merchant-of-venice"] in validation_text and plays["hamlet"] not in validation_text
