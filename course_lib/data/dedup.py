"""Finding duplicates and near-duplicates, and splitting data so that none crosses splits.

Near-duplicates are measured by the Jaccard similarity of character 3-gram
sets (shingles) of a similarity key that ignores case, punctuation and filler
words. Used for deduplication, for decontamination against evaluation
questions, and for a grouped train/validation/test split without leakage.
"""

import random
import re
from collections import Counter

import numpy as np

from course_lib.data.cleaning import Removal, Row, StepReport, normalize_text

# Above the highest similarity between two genuinely different questions of the clean
# question bank (0.76: "What ingredients does the Tuna Nigiri have?" vs "... Eel Nigiri have?"),
# so no distinct question is ever merged; case, punctuation and spacing variants score 1.0,
# and a typo or a "pls" in a question of ordinary length stays above it.
NEAR_DUPLICATE_THRESHOLD = 0.8
SHINGLE_SIZE = 3




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
