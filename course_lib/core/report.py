"""A lesson's headline result, visible in the notebook and collected by the course runner."""

from IPython.display import display

HEADLINE_MIMETYPE = "application/vnd.llm-course.headline+json"


def headline(text: str) -> None:
    """Show the lesson's one-line result; ``course_lib.lessons.notebooks`` reads it from the executed notebook."""
    display({HEADLINE_MIMETYPE: {"headline": text}, "text/markdown": f"**Headline:** {text}"}, raw=True)
