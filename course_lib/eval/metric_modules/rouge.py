"""The rouge metric for evaluate.load(path), offline: see course_lib.eval.metrics."""

from course_lib.eval.metrics import Rouge  # noqa: F401
