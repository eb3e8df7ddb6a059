"""The whole course as one pipeline of cached stages: raw logs to a shipped, evaluated model (``python -m course_lib.pipeline``)."""
