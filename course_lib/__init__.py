"""Shared code of the course "Adapting Large Language Models".

Importing this package only sets the offline defaults (see :mod:`course_lib.core.offline`):
it must happen before transformers, datasets or evaluate are imported, so that
nothing ever waits on the network. Everything heavy lives in submodules.
"""

from course_lib.core.offline import apply_offline_defaults

apply_offline_defaults()

__version__ = "0.1.0"
