"""The bleu metric for evaluate.load(path), offline: see course_lib.eval.metrics."""

from course_lib.eval.metrics import Bleu  # noqa: F401
