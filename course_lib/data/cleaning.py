"""Generic cleaning steps for text data, each returning the rows it keeps and a report.

Each step is a small function that takes rows and returns the rows it keeps
with a :class:`StepReport` (rows in, rows out, what it removed and why), so a
lesson can run and inspect them one by one. Rules that depend on the data set
(which replies are junk, which public facts must survive anonymization, which
answers are verified) are arguments: :mod:`course_lib.sakura.cleaning` supplies
the running example's and chains the steps.
"""

import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

Row = dict[str, Any]
TEXT_FIELDS = ("message", "staff_reply")


@dataclass(frozen=True)
class Removal:
    """A row a step dropped, why, and (for duplicates and contamination) what it was too close to."""

    row: Row
    reason: str
    match: str = ""
    similarity: float | None = None


@dataclass
class StepReport:
    """What one step did: rows in and out, rows rewritten, rows removed, per-reason counts."""

    step: str
    rows_in: int
    rows_out: int
    changed: int = 0
    removed: list[Removal] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    similarities: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """One line of the pipeline table."""
        details = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.counts.items(), key=lambda kv: -kv[1]))
        return {"step": self.step, "rows in": self.rows_in, "rows out": self.rows_out,
                "removed": self.rows_in - self.rows_out, "changed": self.changed, "details": details}


@dataclass
class PipelineReport:
    """The reports of every step of :func:`prepare_training_set`, in order."""

    steps: list[StepReport]

    def step(self, name: str) -> StepReport:
        """The report of the step called ``name``."""
        for report in self.steps:
            if report.step == name:
                return report
        raise KeyError(f"No step '{name}'. Steps: {', '.join(r.step for r in self.steps)}.")

    def table(self) -> list[dict[str, Any]]:
        """One summary line per step (feed it to ``pandas.DataFrame``)."""
        return [report.summary() for report in self.steps]

    def removed_by(self) -> dict[str, str]:
        """The id of every removed row and the step that removed it."""
        return {removal.row["id"]: report.step for report in self.steps for removal in report.removed}


# --- Normalization


QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"'})
# Cyrillic and Greek letters that look Latin. Only folded inside words that also contain Latin
# letters, so genuine Cyrillic or Greek text is left alone (the language rule deals with it).
LOOKALIKE_LETTERS = dict(zip("\u0430\u0435\u043e\u0440\u0441\u0445\u0443\u0456\u0410\u0415\u041e\u0420\u0421\u0425"
                             "\u039f\u0391\u0395\u03bf", "aeopcxyiAEOPCXOAEo"))
LOOKALIKES = str.maketrans(LOOKALIKE_LETTERS)
_LATIN = re.compile(r"[A-Za-z]")
_NON_LATIN_LETTER = re.compile(r"[\u0370-\u03ff\u0400-\u04ff]")


def _fold_lookalikes(word: str) -> str:
    """A word mixing Latin with Cyrillic/Greek letters, written in Latin letters only."""
    if _LATIN.search(word) and _NON_LATIN_LETTER.search(word):
        return word.translate(LOOKALIKES)
    return word


def normalize_text(text: str) -> str:
    """Text as it should be stored: NFKC, look-alikes folded, straight quotes, no invisible
    characters, single spaces, no leading or trailing space. Case and punctuation are kept."""
    text = unicodedata.normalize("NFKC", text).translate(QUOTES)
    text = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) not in ("Cf", "Cc"))
    return " ".join(_fold_lookalikes(word) for word in text.split())


def normalize_rows(rows: list[Row], fields: tuple[str, ...] = TEXT_FIELDS) -> tuple[list[Row], StepReport]:
    """Every text field normalized; counts how many rows it changed."""
    out = [row | {f: normalize_text(row[f]) for f in fields} for row in rows]
    changed = sum(any(a[f] != b[f] for f in fields) for a, b in zip(rows, out))
    return out, StepReport("normalize", len(rows), len(out), changed=changed)


# --- Junk filter: named rules, the first that matches names the reason


COMMON_ENGLISH = frozenset(
    "a an the is are am was be do does did can could would will what how when where which who why "
    "i me my you your u we our us it its this that there here any some of in on at to for with and or "
    "have has get much many please pls open".split()
)
_URL = re.compile(r"https?://|www\.", re.IGNORECASE)
_AD_WORDS = re.compile(r"\b(?:followers|crypto|seo|congratulations|gift card|click here)\b", re.IGNORECASE)
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def message_words(text: str) -> list[str]:
    """The words of a text, case-folded: runs of letters (digits and punctuation split them)."""
    return re.findall(r"[^\W\d_]+", text.casefold())


def is_spam(text: str) -> bool:
    """A link or advertising words ('followers', 'crypto', 'click here', ...)."""
    return bool(_URL.search(text) or _AD_WORDS.search(text))


def is_keyboard_mash(text: str) -> bool:
    """Letters typed along one keyboard row ('asdfgh', 'qwerty') or one letter held down ('jjjjjj')."""
    letters = "".join(message_words(text))
    if len(letters) < 5:
        return False
    return len(set(letters)) <= 2 or any(set(letters) <= set(row) for row in KEYBOARD_ROWS)


def not_english(text: str) -> bool:
    """Mostly non-Latin letters, or not a single common English word."""
    letters = "".join(message_words(text))
    if sum(ch.isascii() for ch in letters) < len(letters) / 2:
        return True
    return not any(word in COMMON_ENGLISH for word in message_words(text))


def junk_reason(row: Row, rules: dict[str, Callable[[Row], bool]]) -> str | None:
    """The name of the first rule (in order) the row breaks, or None for a row worth keeping."""
    return next((name for name, rule in rules.items() if rule(row)), None)


def filter_junk(rows: list[Row], rules: dict[str, Callable[[Row], bool]]) -> tuple[list[Row], StepReport]:
    """Rows that break none of the named ``rules``; the report counts drops per rule."""
    kept, removed = [], []
    for row in rows:
        reason = junk_reason(row, rules)
        if reason is None:
            kept.append(row)
        else:
            removed.append(Removal(row, reason))
    counts = Counter(r.reason for r in removed)
    return kept, StepReport("filter junk", len(rows), len(kept), removed=removed, counts=counts)


# --- Anonymization

PLACEHOLDERS = {"name": "[NAME]", "email": "[EMAIL]", "phone": "[PHONE]", "address": "[ADDRESS]"}
_NAME = r"([A-Z][a-z]+(?:[ -][A-Z][a-z]+)?)"
PII_PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    "email": (
        re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
        re.compile(r"[\w.+-]+\s*(?:\[at\]|\(at\)|\sat\s)\s*[\w-]+\s*(?:\[dot\]|\(dot\)|\sdot\s)\s*[a-z]{2,}\b",
                   re.IGNORECASE),
    ),
    "phone": (re.compile(r"(?<![\w$.])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?![\w])"),
              re.compile(r"(?<![\w$.])\d{3}[\s.-]\d{4}(?![\w.])")),
    "address": (re.compile(r"\b\d{1,5}\s+(?:[A-Za-z]+\s+){1,3}(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr"
                           r"|boulevard|blvd|way|place|court)\b", re.IGNORECASE),),
    "name": (
        re.compile(r"(?i:\b(?:my name is|i am|i'm|this is|name's|call me)\s+)" + _NAME),
        re.compile(r"(?i:\bmy\s+(?:friend|wife|husband|partner|son|daughter|mom|mother|dad|father|boss"
                   r"|colleague|sister|brother)\s+)" + _NAME),
        re.compile(r"^(?i:(?:hi|hello|hey|dear)[ ,]+)" + _NAME + r"(?=[,!.]|\s*$)"),
        re.compile(r"(?i:\b(?:thanks|thank you|cheers|regards|best)[ ,!]+)" + _NAME + r"(?=[,!.]|\s*$)"),
        re.compile(r"(?:^|\s)[-\u2013\u2014]\s*" + _NAME + r"\s*$"),
    ),
}
_PERSON = re.compile(r"[A-Z][a-z]+(?: [A-Z][a-z]+)+")


@dataclass(frozen=True)
class PublicFacts:
    """Text that looks like personal data but is public and must survive anonymization.

    ``terms`` are kept wherever they occur, in any case (a business's address, its
    staff's public names); ``phones`` are kept in any layout, with or without +1.
    """

    terms: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()


@dataclass(frozen=True)
class Anonymized:
    """Text with personal data replaced by placeholders, and what was found as (kind, text)."""

    text: str
    found: tuple[tuple[str, str], ...]


def _overlaps(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(start < span[1] and span[0] < end for start, end in spans)


def _is_public_phone(text: str, phones: tuple[str, ...]) -> bool:
    """Whether a phone-like match is one of ``phones``, in any layout, with or without +1."""
    digits = re.sub(r"\D", "", text)
    return len(digits) >= 7 and any(
        ours.endswith(digits) or digits.endswith(ours) for ours in (re.sub(r"\D", "", phone) for phone in phones)
    )


@functools.lru_cache(maxsize=8)
def _terms_pattern(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for all terms, longest first (None for no terms)."""
    if not terms:
        return None
    return re.compile("|".join(re.escape(term) for term in sorted(terms, key=len, reverse=True)), re.IGNORECASE)


def _allowed_spans(text: str, public: PublicFacts) -> list[tuple[int, int]]:
    """Where the public facts occur (their phones in any format)."""
    pattern = _terms_pattern(public.terms)
    spans = [m.span() for m in pattern.finditer(text)] if pattern else []
    for phone_pattern in PII_PATTERNS["phone"]:
        spans += [m.span() for m in phone_pattern.finditer(text) if _is_public_phone(m.group(), public.phones)]
    return spans


def _name_spans(text: str, known_names: Iterable[str]) -> list[tuple[int, int]]:
    """Names introduced by a cue ('my name is', 'Thanks,', '- ...') or known from the row (the sender)."""
    spans = [m.span(1) for pattern in PII_PATTERNS["name"] for m in pattern.finditer(text)]
    for name in known_names:
        if _PERSON.fullmatch(name):
            for part in (name, *name.split()):
                spans += [m.span() for m in re.finditer(rf"\b{re.escape(part)}\b", text, re.IGNORECASE)]
    return spans


def anonymize(text: str, public: PublicFacts, known_names: Iterable[str] = ()) -> Anonymized:
    """Replace e-mails, phones, street addresses and people's names with placeholders.

    ``known_names`` are names known to belong to people in this row (e.g. the sender's),
    found in any case. Anything overlapping one of the ``public`` facts is kept. Pattern-based:
    a name without a cue and not known to the row is missed (the lesson measures how often).
    """
    candidates = [(span, kind) for kind in ("email", "phone", "address")
                  for pattern in PII_PATTERNS[kind] for span in (m.span() for m in pattern.finditer(text))]
    candidates += [(span, "name") for span in _name_spans(text, known_names)]
    allowed = _allowed_spans(text, public)
    chosen: list[tuple[tuple[int, int], str]] = []
    for span, kind in sorted(candidates, key=lambda c: (c[0][0], -c[0][1])):
        if not _overlaps(span, allowed) and not _overlaps(span, [s for s, _ in chosen]):
            chosen.append((span, kind))
    found = tuple((kind, text[start:end]) for (start, end), kind in chosen)
    for (start, end), kind in reversed(chosen):
        text = text[:start] + PLACEHOLDERS[kind] + text[end:]
    return Anonymized(text, found)


def anonymize_rows(rows: list[Row], public: PublicFacts) -> tuple[list[Row], StepReport]:
    """Message and reply anonymized (the sender's name counts as known); the customer field becomes [NAME]."""
    out, counts, changed = [], Counter(), 0
    for row in rows:
        known = [row["customer"]]
        message, reply = anonymize(row["message"], public, known), anonymize(row["staff_reply"], public, known)
        counts.update(kind for kind, _ in message.found + reply.found)
        changed += bool(message.found or reply.found)
        customer = PLACEHOLDERS["name"] if row["customer"] else ""
        out.append(row | {"customer": customer, "message": message.text, "staff_reply": reply.text})
    return out, StepReport("anonymize", len(rows), len(out), changed=changed, counts=counts)


def missed_pii(rows: list[Row], planted: Iterable[Any]) -> list[Any]:
    """The planted personal data (items with row_id, field, text) still present in ``rows``."""
    by_id = {row["id"]: row for row in rows}
    return [item for item in planted if item.text in by_id[item.row_id][item.field]]


# --- Verification against a source of truth


def verify(rows: list[Row], answers: dict[str, dict[str, Any]]) -> tuple[list[Row], StepReport]:
    """Rows whose reply is exactly one of the verified ``answers`` (say, every answer a menu implies): a
    wrong price, unsafe allergy advice, rambling or a personal aside makes a reply unverifiable, and it goes."""
    kept = [row for row in rows if row["staff_reply"] in answers]
    removed = [Removal(row, "reply not a menu answer") for row in rows if row["staff_reply"] not in answers]
    return kept, StepReport("verify", len(rows), len(kept), removed=removed, counts=Counter(r.reason for r in removed))
