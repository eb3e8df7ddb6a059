"""Finding duplicates and near-duplicates, and splitting data so that none crosses splits.

Near-duplicates are measured by the Jaccard similarity of character 3-gram
sets (shingles) of a similarity key that ignores case, punctuation and filler
words. Used for deduplication, for decontamination against evaluation
questions, and for a grouped train/validation/test split without leakage.

At scale, comparing all n(n-1)/2 pairs is too slow: MinHash (Broder 1997)
turns each shingle set into a short signature whose slots agree with
probability equal to the Jaccard similarity, and locality-sensitive hashing
(banding; Leskovec, Rajaraman and Ullman, *Mining of Massive Datasets*, ch. 3)
proposes only the pairs that agree on a whole band of slots. The signature is
written here from scratch, equal to ``datasketch.MinHash``; the index is
``datasketch.MinHashLSH``.
"""

import hashlib
import random
import re
import string
from collections import Counter
from dataclasses import dataclass

import numpy as np
from datasketch import LeanMinHash, MinHashLSH

from course_lib.data.cleaning import Removal, Row, StepReport, normalize_text

# Above the highest similarity between two genuinely different questions of the clean
# question bank (0.76: "What ingredients does the Tuna Nigiri have?" vs "... Eel Nigiri have?"),
# so no distinct question is ever merged; case, punctuation and spacing variants score 1.0,
# and a typo or a "pls" in a question of ordinary length stays above it.
NEAR_DUPLICATE_THRESHOLD = 0.8
SHINGLE_SIZE = 3

# MinHash + LSH: 128 hash functions, cut into bands; MINHASH_SEED picks the hash functions
# (datasketch's default seed). MAX_MISS_AT_THRESHOLD is the chance we accept that a pair exactly
# at the threshold is never proposed: choose_banding turns it into (bands, rows).
MINHASH_PERMUTATIONS = 128
MINHASH_SEED = 1
MAX_MISS_AT_THRESHOLD = 0.002


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

    for i, j in sorted(near_duplicate_pairs(texts, threshold)):
        parent[root(j)] = root(i)
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


# --- Near-duplicates at scale: exact all pairs vs MinHash + LSH


def near_duplicate_pairs(texts: list[str], threshold: float = NEAR_DUPLICATE_THRESHOLD) -> set[tuple[int, int]]:
    """Every pair of indices i < j whose texts are at least ``threshold`` similar, found the exact
    way: all n(n-1)/2 Jaccard similarities, one by one. Quadratic in n: the reference LSH must match."""
    sets = [shingles(text) for text in texts]
    return {(i, j) for i in range(len(sets)) for j in range(i + 1, len(sets)) if jaccard(sets[i], sets[j]) >= threshold}


_UINT32 = np.uint32


def shingle_hashes(grams: frozenset[str] | list[str]) -> np.ndarray:
    """One 32-bit hash per shingle, as datasketch computes it: the first 4 bytes of its SHA-1
    (little-endian), then scrambled by MurmurHash3's finalizer so that similar inputs land far apart."""
    h = np.array([int.from_bytes(hashlib.sha1(g.encode("utf-8")).digest()[:4], "little") for g in grams], dtype=_UINT32)
    h ^= h >> _UINT32(16)
    h *= _UINT32(0x85EBCA6B)
    h ^= h >> _UINT32(13)
    h *= _UINT32(0xC2B2AE35)
    return h ^ (h >> _UINT32(16))


def minhash_permutations(num_perm: int = MINHASH_PERMUTATIONS, seed: int = MINHASH_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of ``num_perm`` random hash functions h -> a*h + b (mod 2**32), a odd so each one
    shuffles the 32-bit values without collisions; drawn like datasketch's (same seed, same functions)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=_UINT32) * _UINT32(2) + _UINT32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=_UINT32)
    return a, b


def _smallest_hashes(hashes: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each hash function h -> a*h + b (mod 2**32: uint32 arithmetic wraps), its smallest value over ``hashes``."""
    return (a[:, None] * hashes[None, :] + b[:, None]).min(axis=1)


def minhash_signature(grams: frozenset[str], num_perm: int = MINHASH_PERMUTATIONS, seed: int = MINHASH_SEED) -> np.ndarray:
    """The MinHash signature of a shingle set: for each of ``num_perm`` random hash functions, the
    smallest value it gives any shingle. Two sets agree in one slot with probability equal to their
    Jaccard similarity (the smallest of A ∪ B falls in A ∩ B). Equal to ``datasketch.MinHash``."""
    if not grams:
        raise ValueError("A MinHash signature needs at least one shingle; got an empty set.")
    return _smallest_hashes(shingle_hashes(list(grams)), *minhash_permutations(num_perm, seed))


def minhash_signatures(texts: list[str], num_perm: int = MINHASH_PERMUTATIONS, seed: int = MINHASH_SEED) -> np.ndarray:
    """The signatures of many texts' shingle sets, one row each (each distinct shingle hashed once)."""
    sets = [shingles(text) for text in texts]
    vocabulary = sorted(frozenset().union(*sets))
    hashes = dict(zip(vocabulary, shingle_hashes(vocabulary)))
    a, b = minhash_permutations(num_perm, seed)
    signatures = np.empty((len(texts), num_perm), dtype=_UINT32)
    for i, grams in enumerate(sets):
        signatures[i] = _smallest_hashes(np.array([hashes[g] for g in grams], dtype=_UINT32), a, b)
    return signatures


def estimated_jaccard(signature: np.ndarray, other: np.ndarray) -> float:
    """The MinHash estimate of the Jaccard similarity: the fraction of slots where two signatures agree."""
    return float(np.mean(signature == other))


def candidate_probability(similarity: float | np.ndarray, bands: int, rows: int) -> float | np.ndarray:
    """The chance LSH proposes a pair of this Jaccard similarity: it must agree on all ``rows`` slots
    of at least one of ``bands`` bands, 1 - (1 - s**rows)**bands (the S-curve)."""
    return 1 - (1 - np.asarray(similarity, dtype=np.float64) ** rows) ** bands


def choose_banding(threshold: float = NEAR_DUPLICATE_THRESHOLD, num_perm: int = MINHASH_PERMUTATIONS,
                   max_miss: float = MAX_MISS_AT_THRESHOLD) -> tuple[int, int]:
    """(bands, rows) for ``num_perm`` slots: the most rows per band (the steepest S-curve, so the fewest
    dissimilar pairs proposed) such that a pair exactly at ``threshold`` is missed with chance ≤ ``max_miss``."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1 - candidate_probability(threshold, bands, rows) <= max_miss:
            return bands, rows
    raise ValueError(f"No banding of {num_perm} slots misses a pair at {threshold} with chance <= {max_miss}; "
                     "use more permutations or accept a higher miss rate.")


@dataclass(frozen=True)
class LshSearch:
    """What MinHash + LSH found: ``candidates`` proposed by the bands, ``pairs`` those whose exact
    Jaccard reaches the threshold (so every pair reported is a true one; LSH can only miss)."""

    candidates: set[tuple[int, int]]
    pairs: set[tuple[int, int]]


def lsh_near_duplicate_pairs(texts: list[str], threshold: float = NEAR_DUPLICATE_THRESHOLD,
                             bands_rows: tuple[int, int] | None = None, seed: int = MINHASH_SEED) -> LshSearch:
    """Near-duplicate pairs i < j without comparing all pairs: MinHash signatures, datasketch's
    ``MinHashLSH`` index with ``bands_rows`` (default: :func:`choose_banding`), then the exact Jaccard of
    each candidate. Time grows with n plus the number of candidates, not with n²."""
    bands, rows = bands_rows or choose_banding(threshold)
    signatures = minhash_signatures(texts, bands * rows, seed)
    index = MinHashLSH(threshold=threshold, num_perm=bands * rows, params=(bands, rows))
    sketches = [LeanMinHash(seed=seed, hashvalues=signature, scheme="affine32") for signature in signatures]
    for i, sketch in enumerate(sketches):
        index.insert(i, sketch)
    candidates = {(min(i, j), max(i, j)) for i, sketch in enumerate(sketches) for j in index.query(sketch) if j != i}
    sets = [shingles(text) for text in texts]
    return LshSearch(candidates, {(i, j) for i, j in candidates if jaccard(sets[i], sets[j]) >= threshold})


def synthetic_corpus(messages: list[str], size: int, seed: int, tail_words: int = 8) -> list[str]:
    """``size`` texts for timing deduplication as data grows, built from real ``messages``: each is a
    message followed by ``tail_words`` random letter-words, content of its own (in a large corpus most
    pairs of documents share little), and every second text is a near-copy of the one before it with
    one tail word redrawn (Jaccard around 0.8: some above the threshold, some below). The same seed gives
    the same texts, and a larger corpus starts with the smaller one."""
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 8)))

    texts: list[str] = []
    while len(texts) < size:
        message, tail = rng.choice(messages), [word() for _ in range(tail_words)]
        texts.append(" ".join([message, *tail]))
        tail[rng.randrange(tail_words)] = word()
        texts.append(" ".join([message, *tail]))
    return texts[:size]
