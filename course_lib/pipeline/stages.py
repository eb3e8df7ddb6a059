"""A pipeline of cached stages: each builds one artefact from the artefacts of the stages it needs.

A stage's artefact is keyed on its recipe (``config``), on the code and data
that build it (:func:`course_lib.recipes.artifacts.artifact_key`) and on the
folders of the stages it needs, whose names carry their own keys. So a changed
recipe gives new folders to that stage and to everything downstream of it,
and to nothing else: :func:`plan` says which stages a run would build,
:func:`run_stages` builds those and reuses the rest. A folder that is missing
is built again, and one whose files no longer match its manifest is rebuilt
(:func:`course_lib.core.builds.build_atomically`); a stale one is never reused,
because a stale folder has a different name.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from course_lib.core.builds import manifest_problems
from course_lib.core.memory import release_freed_memory
from course_lib.recipes.artifacts import artifact_folder, cached_artifact

Build = Callable[[Path, Path, dict[str, Path]], None]
"""``build(folder, scratch, inputs)``: write the artefact into ``folder``; ``inputs`` maps each needed stage to its folder."""


@dataclass(frozen=True)
class Stage:
    """One step of a pipeline: its artefact's name, the stages it needs, its recipe and how to build it.

    ``recipe_module`` is the course_lib module whose code (with everything it
    imports) decides the artefact, as in :func:`course_lib.recipes.artifacts.cached_artifact`.
    """

    name: str
    needs: tuple[str, ...]
    config: dict[str, Any]
    build: Build = field(compare=False)
    recipe_module: str
    description: str = ""


@dataclass(frozen=True)
class StageRun:
    """What running one stage did: ``built`` (it was missing, stale or damaged) or ``reused``, and how long it took."""

    name: str
    status: str
    seconds: float
    folder: Path


def ordered(stages: Sequence[Stage]) -> list[Stage]:
    """The stages with every stage after the ones it needs; unknown or circular needs are errors."""
    by_name = {stage.name: stage for stage in stages}
    if len(by_name) != len(stages):
        raise ValueError(f"Two stages share a name: {[stage.name for stage in stages]}. Give each stage its own name.")
    for stage in stages:
        unknown = [need for need in stage.needs if need not in by_name]
        if unknown:
            raise ValueError(f"Stage '{stage.name}' needs {unknown}, which no stage builds. Add them or fix the name.")
    result: list[Stage] = []
    placed: set[str] = set()
    while len(result) < len(stages):
        ready = [s for s in stages if s.name not in placed and all(need in placed for need in s.needs)]
        if not ready:
            stuck = sorted(s.name for s in stages if s.name not in placed)
            raise ValueError(f"The stages {stuck} need each other in a circle: a pipeline must have a first step.")
        result.extend(ready)
        placed.update(stage.name for stage in ready)
    return result


def downstream(stages: Sequence[Stage], name: str) -> list[str]:
    """``name`` and every stage that needs it, directly or not, in running order: what a change to it rebuilds."""
    affected = {name}
    for stage in ordered(stages):
        if affected & set(stage.needs):
            affected.add(stage.name)
    return [stage.name for stage in ordered(stages) if stage.name in affected]


def keyed_config(stage: Stage, folders: dict[str, Path]) -> dict[str, Any]:
    """The stage's recipe plus the folders of what it needs: the artefact key changes when either does."""
    if not stage.needs:
        return stage.config
    return {**stage.config, "inputs": {need: folders[need].name for need in stage.needs}}


def stage_folders(stages: Sequence[Stage]) -> dict[str, Path]:
    """Where each stage's artefact lives for these recipes, computed without building anything."""
    folders: dict[str, Path] = {}
    for stage in ordered(stages):
        folders[stage.name] = artifact_folder(stage.name, keyed_config(stage, folders), stage.recipe_module)
    return folders


def is_built(folder: Path) -> bool:
    """Whether ``folder`` holds a complete, undamaged artefact."""
    return folder.exists() and not manifest_problems(folder)


def plan(stages: Sequence[Stage]) -> dict[str, str]:
    """For each stage, in running order: "reuse" if its artefact is in the cache and intact, else "build"."""
    return {name: "reuse" if is_built(folder) else "build" for name, folder in stage_folders(stages).items()}


def run_stages(stages: Sequence[Stage], progress: bool = True) -> list[StageRun]:
    """Build what is missing, stale or damaged and reuse the rest, in order, with a progress bar over the stages."""
    folders: dict[str, Path] = {}
    runs: list[StageRun] = []
    bar = tqdm(ordered(stages), desc="pipeline", unit="stage", disable=not progress)
    for stage in bar:
        bar.set_postfix_str(stage.name)
        config = keyed_config(stage, folders)
        status = "reused" if is_built(artifact_folder(stage.name, config, stage.recipe_module)) else "built"
        inputs = {need: folders[need] for need in stage.needs}
        started = time.perf_counter()
        folders[stage.name] = cached_artifact(
            stage.name, config, lambda folder, scratch, stage=stage, inputs=inputs: stage.build(folder, scratch, inputs),
            recipe_module=stage.recipe_module)
        release_freed_memory()  # a built stage's models are gone: hand their memory back before the next one
        runs.append(StageRun(stage.name, status, round(time.perf_counter() - started, 1), folders[stage.name]))
    return runs
