"""The perplexity metric for evaluate.load(path), offline: see course_lib.eval.metrics."""

from course_lib.eval.metrics import Perplexity  # noqa: F401
