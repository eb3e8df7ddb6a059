"""How fast this machine trains and runs the course's model: the measurements behind every budget.

:mod:`course_lib.bench.throughput` holds the measurements, ``python -m course_lib.bench`` (``make bench``) prints them.
"""
