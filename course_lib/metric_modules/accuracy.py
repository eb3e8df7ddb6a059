"""The accuracy metric for evaluate.load(path), offline: see course_lib.metrics."""

from course_lib.metrics import Accuracy  # noqa: F401
