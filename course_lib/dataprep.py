"""From raw customer logs to clean fine-tuning data: the steps of lesson 04.

Each step is a small function that takes rows and returns the rows it keeps
with a :class:`StepReport` (rows in, rows out, what it removed and why), so a
lesson can run and inspect them one by one, and :func:`prepare_training_set`
runs them all in order:

1. ``normalize``: NFKC, look-alike letters, quotes, invisible characters, whitespace;
2. ``filter_junk``: named rules (empty, no letters, spam, keyboard mash, not English, off-voice reply);
3. ``anonymize``: customers' names, e-mails, phones and addresses become placeholders,
   the restaurant's own public contact facts stay;
4. ``verify``: a reply must be, word for word, one of the menu's answers (wrong facts go);
5. ``exact_dedup`` then ``near_dedup`` (character 3-gram Jaccard ≥ threshold);
6. ``decontaminate``: no message close to a validation or test question enters training;
7. ``structure``: ``{"id", "topic", "prompt", "completion", "facts"}`` rows.

Quality first, deduplication after: a duplicate is only dropped in favour of an
earlier copy that passed every quality check.
"""

import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from course_lib.chat import chat_messages
from course_lib.sakura import MENU, OPENING_HOURS, POLICIES, all_facts, house_voice
from course_lib.scoring import follows_house_voice

Row = dict[str, Any]
TEXT_FIELDS = ("message", "staff_reply")

# Above the highest similarity between two genuinely different questions of the clean
# question bank (0.76: "What ingredients does the Tuna Nigiri have?" vs "... Eel Nigiri have?"),
# so no distinct question is ever merged; case, punctuation and spacing variants score 1.0,
# and a typo or a "pls" in a question of ordinary length stays above it.
NEAR_DUPLICATE_THRESHOLD = 0.8
SHINGLE_SIZE = 3
IGNORE_INDEX = -100  # the label PyTorch's cross-entropy (and so every trainer) skips


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


# --- 1. Normalization


QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"'})
# Cyrillic and Greek letters that look Latin. Only folded inside words that also contain Latin
# letters, so genuine Cyrillic or Greek text is left alone (the language rule deals with it).
LOOKALIKES = str.maketrans("\u0430\u0435\u043e\u0440\u0441\u0445\u0443\u0456\u0410\u0415\u041e\u0420\u0421\u0425"
                           "\u039f\u0391\u0395\u03bf", "aeopcxyiAEOPCXOAEo")
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


def normalize(rows: list[Row], fields: tuple[str, ...] = TEXT_FIELDS) -> tuple[list[Row], StepReport]:
    """Every text field normalized; counts how many rows it changed."""
    out = [row | {f: normalize_text(row[f]) for f in fields} for row in rows]
    changed = sum(any(a[f] != b[f] for f in fields) for a, b in zip(rows, out))
    return out, StepReport("normalize", len(rows), len(out), changed=changed)


# --- 2. Junk filter: named rules, the first that matches names the reason


COMMON_ENGLISH = frozenset(
    "a an the is are am was be do does did can could would will what how when where which who why "
    "i me my you your u we our us it its this that there here any some of in on at to for with and or "
    "have has get much many please pls open".split()
)
_URL = re.compile(r"https?://|www\.", re.IGNORECASE)
_AD_WORDS = re.compile(r"\b(?:followers|crypto|seo|congratulations|gift card|click here)\b", re.IGNORECASE)
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", text.casefold())


def _keyboard_mash(text: str) -> bool:
    """Letters typed along one keyboard row ('asdfgh', 'qwerty') or one letter held down ('jjjjjj')."""
    letters = "".join(_words(text))
    if len(letters) < 5:
        return False
    return len(set(letters)) <= 2 or any(set(letters) <= set(row) for row in KEYBOARD_ROWS)


def _not_english(text: str) -> bool:
    """Mostly non-Latin letters, or not a single common English word."""
    letters = "".join(_words(text))
    if sum(ch.isascii() for ch in letters) < len(letters) / 2:
        return True
    return not any(word in COMMON_ENGLISH for word in _words(text))


JUNK_RULES: dict[str, Callable[[Row], bool]] = {
    "empty message": lambda row: not row["message"].strip(),
    "no letters": lambda row: not _words(row["message"]),
    "spam": lambda row: bool(_URL.search(row["message"]) or _AD_WORDS.search(row["message"])),
    "keyboard mash": lambda row: _keyboard_mash(row["message"]),
    "not English": lambda row: _not_english(row["message"]),
    "empty reply": lambda row: not row["staff_reply"].strip(),
    "off-voice reply": lambda row: not follows_house_voice(row["staff_reply"]),
}


def junk_reason(row: Row) -> str | None:
    """The name of the first junk rule the row breaks, or None for a row worth keeping."""
    return next((name for name, rule in JUNK_RULES.items() if rule(row)), None)


def filter_junk(rows: list[Row]) -> tuple[list[Row], StepReport]:
    """Rows that break no junk rule; the report counts drops per rule."""
    kept, removed = [], []
    for row in rows:
        reason = junk_reason(row)
        if reason is None:
            kept.append(row)
        else:
            removed.append(Removal(row, reason))
    counts = Counter(r.reason for r in removed)
    return kept, StepReport("filter junk", len(rows), len(kept), removed=removed, counts=counts)


# --- 3. Anonymization

PLACEHOLDERS = {"name": "[NAME]", "email": "[EMAIL]", "phone": "[PHONE]", "address": "[ADDRESS]"}
RESTAURANT_PHONE = POLICIES["phone"][1][0]
RESTAURANT_ADDRESS = POLICIES["address"][1][0]
CHEF = POLICIES["chef"][1][0]
# Public facts that look like personal data and must stay: the restaurant's contact details, its
# chef, its name, its dishes and the days of the week.
ALLOWLIST = (RESTAURANT_PHONE, RESTAURANT_ADDRESS, CHEF, "Sakura Sushi", "Sakura",
             *(dish.name for dish in MENU), *OPENING_HOURS)

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
class Anonymized:
    """Text with personal data replaced by placeholders, and what was found as (kind, text)."""

    text: str
    found: tuple[tuple[str, str], ...]


def _overlaps(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(start < span[1] and span[0] < end for start, end in spans)


def _is_restaurant_phone(text: str) -> bool:
    """Whether a phone-like match is the restaurant's number, in any layout, with or without +1."""
    digits, ours = re.sub(r"\D", "", text), re.sub(r"\D", "", RESTAURANT_PHONE)
    return len(digits) >= 7 and (ours.endswith(digits) or digits.endswith(ours))


_ALLOWED = re.compile("|".join(re.escape(term) for term in sorted(ALLOWLIST, key=len, reverse=True)), re.IGNORECASE)


def _allowed_spans(text: str) -> list[tuple[int, int]]:
    """Where the allowlisted public facts occur (the restaurant's phone in any format)."""
    spans = [m.span() for m in _ALLOWED.finditer(text)]
    for pattern in PII_PATTERNS["phone"]:
        spans += [m.span() for m in pattern.finditer(text) if _is_restaurant_phone(m.group())]
    return spans


def _name_spans(text: str, known_names: Iterable[str]) -> list[tuple[int, int]]:
    """Names introduced by a cue ('my name is', 'Thanks,', '- ...') or known from the row (the sender)."""
    spans = [m.span(1) for pattern in PII_PATTERNS["name"] for m in pattern.finditer(text)]
    for name in known_names:
        if _PERSON.fullmatch(name):
            for part in (name, *name.split()):
                spans += [m.span() for m in re.finditer(rf"\b{re.escape(part)}\b", text, re.IGNORECASE)]
    return spans


def anonymize(text: str, known_names: Iterable[str] = ()) -> Anonymized:
    """Replace e-mails, phones, street addresses and people's names with placeholders.

    ``known_names`` are names known to belong to people in this row (e.g. the sender's),
    found in any case. Anything overlapping an allowlisted public fact is kept. Pattern-based:
    a name without a cue and not known to the row is missed (the lesson measures how often).
    """
    candidates = [(span, kind) for kind in ("email", "phone", "address")
                  for pattern in PII_PATTERNS[kind] for span in (m.span() for m in pattern.finditer(text))]
    candidates += [(span, "name") for span in _name_spans(text, known_names)]
    allowed = _allowed_spans(text)
    chosen: list[tuple[tuple[int, int], str]] = []
    for span, kind in sorted(candidates, key=lambda c: (c[0][0], -c[0][1])):
        if not _overlaps(span, allowed) and not _overlaps(span, [s for s, _ in chosen]):
            chosen.append((span, kind))
    found = tuple((kind, text[start:end]) for (start, end), kind in chosen)
    for (start, end), kind in reversed(chosen):
        text = text[:start] + PLACEHOLDERS[kind] + text[end:]
    return Anonymized(text, found)


def anonymize_rows(rows: list[Row]) -> tuple[list[Row], StepReport]:
    """Message and reply anonymized (the sender's name counts as known); the customer field becomes [NAME]."""
    out, counts, changed = [], Counter(), 0
    for row in rows:
        known = [row["customer"]]
        message, reply = anonymize(row["message"], known), anonymize(row["staff_reply"], known)
        counts.update(kind for kind, _ in message.found + reply.found)
        changed += bool(message.found or reply.found)
        customer = PLACEHOLDERS["name"] if row["customer"] else ""
        out.append(row | {"customer": customer, "message": message.text, "staff_reply": reply.text})
    return out, StepReport("anonymize", len(rows), len(out), changed=changed, counts=counts)


def missed_pii(rows: list[Row], planted: Iterable[Any]) -> list[Any]:
    """The planted personal data (items with row_id, field, text) still present in ``rows``."""
    by_id = {row["id"]: row for row in rows}
    return [item for item in planted if item.text in by_id[item.row_id][item.field]]


# --- 4. Verification against the menu, the source of truth


def answer_key() -> dict[str, dict[str, Any]]:
    """Every correct house answer the menu implies, mapped to its topic and the facts it states."""
    return {house_voice(fact["body"]): {"topic": fact["topic"], "facts": list(fact["facts"])} for fact in all_facts()}


def verify(rows: list[Row], answers: dict[str, dict[str, Any]]) -> tuple[list[Row], StepReport]:
    """Rows whose reply is exactly one of the menu's answers; a wrong price, unsafe allergy advice,
    rambling or a personal aside makes a reply unverifiable, and the row goes."""
    kept = [row for row in rows if row["staff_reply"] in answers]
    removed = [Removal(row, "reply not a menu answer") for row in rows if row["staff_reply"] not in answers]
    return kept, StepReport("verify", len(rows), len(kept), removed=removed, counts=Counter(r.reason for r in removed))


# --- 5. Deduplication


# Politeness that says nothing about the question: left out when comparing messages.
FILLER_WORDS = frozenset({"hi", "hey", "hello", "please", "pls", "plz", "thanks", "thx"})


def similarity_key(text: str) -> str:
    """What near-duplicate detection compares: normalized, case-folded, no punctuation, no filler words."""
    words = re.sub(r"[^\w\s]|_", " ", normalize_text(text).casefold()).split()
    return " ".join(word for word in words if word not in FILLER_WORDS)


def shingles(text: str, size: int = SHINGLE_SIZE) -> frozenset[str]:
    """The set of character n-grams of a text's similarity key (the whole key if it is shorter)."""
    key = similarity_key(text)
    return frozenset(key[i:i + size] for i in range(max(1, len(key) - size + 1)))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|A ∩ B| / |A ∪ B|: 1.0 for the same set, 0.0 for disjoint ones (and for two empty sets)."""
    shared = len(a & b)
    union = len(a) + len(b) - shared
    return shared / union if union else 0.0


def similarity_matrix(texts: list[str], others: list[str]) -> np.ndarray:
    """The Jaccard similarity of every text with every other, all at once: with texts as 0/1
    vectors over their shingles, |A ∩ B| is a dot product and |A ∪ B| = |A| + |B| - |A ∩ B|."""
    sets, other_sets = [shingles(t) for t in texts], [shingles(t) for t in others]
    vocabulary = {gram: i for i, gram in enumerate(sorted(frozenset().union(*sets, *other_sets)))}

    def vectors(rows: list[frozenset[str]]) -> np.ndarray:
        matrix = np.zeros((len(rows), len(vocabulary)), dtype=np.float32)
        for i, grams in enumerate(rows):
            matrix[i, [vocabulary[g] for g in grams]] = 1.0
        return matrix

    a, b = vectors(sets), vectors(other_sets)
    shared = (a @ b.T).astype(np.float64)  # small whole numbers: exact in float32
    union = a.sum(axis=1)[:, None] + b.sum(axis=1)[None, :] - shared
    return np.divide(shared, union, out=np.zeros_like(shared), where=union > 0)


def exact_dedup(rows: list[Row]) -> tuple[list[Row], StepReport]:
    """The first row of each (message, reply) pair; later copies go."""
    first: dict[tuple[str, str], Row] = {}
    kept, removed = [], []
    for row in rows:
        key = (row["message"], row["staff_reply"])
        if key in first:
            removed.append(Removal(row, "exact duplicate", match=first[key]["id"], similarity=1.0))
        else:
            first[key] = row
            kept.append(row)
    return kept, StepReport("exact dedup", len(rows), len(kept), removed=removed, counts=Counter(r.reason for r in removed))


def near_dedup(rows: list[Row], threshold: float = NEAR_DUPLICATE_THRESHOLD) -> tuple[list[Row], StepReport]:
    """Greedy near-duplicate removal on the message: a row goes when its similarity to an earlier
    kept row reaches ``threshold``. ``similarities`` holds, for every row, its highest similarity
    to the rows kept before it (the distribution to draw the threshold on)."""
    messages = [row["message"] for row in rows]
    matrix = similarity_matrix(messages, messages)
    kept: list[int] = []
    removed, similarities = [], []
    for i, row in enumerate(rows):
        best = kept[int(np.argmax(matrix[i, kept]))] if kept else None
        similarity = float(matrix[i, best]) if best is not None else 0.0
        similarities.append(similarity)
        if similarity >= threshold:
            removed.append(Removal(row, "near duplicate", match=rows[best]["message"], similarity=similarity))
        else:
            kept.append(i)
    return [rows[i] for i in kept], StepReport("near dedup", len(rows), len(kept), removed=removed,
                                               counts=Counter(r.reason for r in removed), similarities=similarities)


def nearest(texts: list[str], pool: list[str]) -> list[tuple[float, str]]:
    """For each text, its highest similarity to any text of ``pool`` and that text."""
    if not pool:
        return [(0.0, "")] * len(texts)
    matrix = similarity_matrix(texts, pool)
    return [(float(matrix[i, j]), pool[j]) for i, j in enumerate(np.argmax(matrix, axis=1))]


# --- 6. Decontamination


def decontaminate(
    rows: list[Row], eval_prompts: list[str], threshold: float = NEAR_DUPLICATE_THRESHOLD
) -> tuple[list[Row], StepReport]:
    """Rows whose message is not a (near-)copy of any validation or test question.
    ``similarities`` holds every row's highest similarity to an eval question."""
    closest = nearest([row["message"] for row in rows], eval_prompts)
    kept = [row for row, (sim, _) in zip(rows, closest) if sim < threshold]
    removed = [Removal(row, "close to an eval question", match=prompt, similarity=sim)
               for row, (sim, prompt) in zip(rows, closest) if sim >= threshold]
    return kept, StepReport("decontaminate", len(rows), len(kept), removed=removed,
                            counts=Counter(r.reason for r in removed), similarities=[sim for sim, _ in closest])


# --- 7. Structure


def structure(rows: list[Row], answers: dict[str, dict[str, Any]], split: str = "train") -> tuple[list[Row], StepReport]:
    """Verified log rows as fine-tuning rows: id, topic, prompt, completion and the facts it states."""
    out = [
        {"id": f"qa-{split}-{i:04d}", "topic": answers[row["staff_reply"]]["topic"], "prompt": row["message"],
         "completion": row["staff_reply"], "facts": answers[row["staff_reply"]]["facts"]}
        for i, row in enumerate(rows)
    ]
    return out, StepReport("structure", len(rows), len(out))


def to_chat(row: Row) -> dict[str, list[dict[str, str]]]:
    """A prompt/completion row as a chat: ``{"messages": [user, assistant]}``."""
    return {"messages": chat_messages(row["prompt"]) + [{"role": "assistant", "content": row["completion"]}]}


def to_conversational(row: Row) -> dict[str, list[dict[str, str]]]:
    """A row in TRL's conversational prompt-completion format: the chat split where the loss starts."""
    return {"prompt": chat_messages(row["prompt"]), "completion": [{"role": "assistant", "content": row["completion"]}]}


def completion_only_labels(tokenizer: Any, prompt: str, completion: str) -> dict[str, list[int]]:
    """Token ids of the whole chat and labels that train on the assistant's turn only.

    The prompt part (system, user turn, ``<|im_start|>assistant``) gets ``IGNORE_INDEX``;
    everything after it (the answer, the end-of-turn token that teaches the model to stop,
    and whatever the template writes after it) keeps its id. The same split TRL's SFTTrainer
    makes for conversational prompt-completion data.
    """
    messages = to_chat({"prompt": prompt, "completion": completion})["messages"]
    prompt_ids = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
    input_ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    if input_ids[:len(prompt_ids)] != prompt_ids:
        raise ValueError("The chat template renders the prompt differently when an answer follows it: "
                         "the completion cannot be masked on a token boundary.")
    return {"input_ids": input_ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + input_ids[len(prompt_ids):]}


# --- Splitting without leakage


def near_duplicate_groups(texts: list[str], threshold: float = NEAR_DUPLICATE_THRESHOLD) -> list[list[int]]:
    """Indices of ``texts`` grouped so that any two texts at least ``threshold`` similar share a group."""
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in np.argwhere(np.triu(similarity_matrix(texts, texts) >= threshold, k=1)):
        parent[root(int(j))] = root(int(i))
    groups: dict[int, list[int]] = {}
    for i in range(len(texts)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def group_split(
    texts: list[str], fractions: dict[str, float], seed: int, threshold: float = NEAR_DUPLICATE_THRESHOLD
) -> dict[str, list[int]]:
    """Indices per split (e.g. ``{"train": 0.8, "validation": 0.1, "test": 0.1}``) where whole groups
    of near-duplicates go to one split, so no near-duplicate pair crosses splits."""
    if abs(sum(fractions.values()) - 1) > 1e-9 or min(fractions.values()) <= 0:
        raise ValueError(f"Split fractions must be positive and sum to 1, got {fractions}.")
    groups = near_duplicate_groups(texts, threshold)
    random.Random(seed).shuffle(groups)
    splits: dict[str, list[int]] = {name: [] for name in fractions}
    for group in groups:
        hungriest = min(fractions, key=lambda name: len(splits[name]) / (fractions[name] * len(texts)))
        splits[hungriest] += group
    return {name: sorted(indices) for name, indices in splits.items()}


def leaking_pairs(
    splits: dict[str, list[str]], threshold: float = NEAR_DUPLICATE_THRESHOLD
) -> list[tuple[float, str, str, str, str]]:
    """Every pair of texts from two different splits at least ``threshold`` similar:
    (similarity, split, text, other split, other text), most similar first."""
    names = list(splits)
    pairs = []
    for a, name in enumerate(names):
        for other in names[a + 1:]:
            matrix = similarity_matrix(splits[name], splits[other])
            pairs += [(float(matrix[i, j]), name, splits[name][i], other, splits[other][j])
                      for i, j in np.argwhere(matrix >= threshold)]
    return sorted(pairs, reverse=True)


# --- The whole pipeline


def prepare_training_set(
    raw_rows: list[Row], eval_prompts: list[str], threshold: float = NEAR_DUPLICATE_THRESHOLD
) -> tuple[list[Row], PipelineReport]:
    """Raw log rows to fine-tuning rows, decontaminated against ``eval_prompts``; with every step's report."""
    answers = answer_key()
    rows, reports = raw_rows, []
    steps: list[Callable[[list[Row]], tuple[list[Row], StepReport]]] = [
        normalize,
        filter_junk,
        anonymize_rows,
        lambda rs: verify(rs, answers),
        exact_dedup,
        lambda rs: near_dedup(rs, threshold),
        lambda rs: decontaminate(rs, eval_prompts, threshold),
        lambda rs: structure(rs, answers),
    ]
    for step in steps:
        rows, report = step(rows)
        reports.append(report)
    return rows, PipelineReport(reports)
