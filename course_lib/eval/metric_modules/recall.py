"""The recall metric for evaluate.load(path), offline: see course_lib.eval.metrics."""

from course_lib.eval.metrics import Recall  # noqa: F401
