"""The precision metric for evaluate.load(path), offline: see course_lib.metrics."""

from course_lib.metrics import Precision  # noqa: F401
