"""The f1 metric for evaluate.load(path), offline: see course_lib.eval.metrics."""

from course_lib.eval.metrics import F1  # noqa: F401
