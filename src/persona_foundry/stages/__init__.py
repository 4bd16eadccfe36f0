"""The persona DAG, declared as data: stage → dependencies. The scheduler knows no stage by name."""

from __future__ import annotations

from . import authenticity, core, examples, lorebook, social, strategy, visual
from .base import PersonaInput, Stage, StageContext

STAGES: tuple[Stage, ...] = (
    core.STAGE,
    strategy.STAGE,
    examples.STAGE,
    social.STAGE,
    authenticity.STAGE,
    visual.STAGE,
    lorebook.STAGE,
)
STAGES_BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}

__all__ = ["STAGES", "STAGES_BY_NAME", "PersonaInput", "Stage", "StageContext"]


def critical_path_s(stages: tuple[Stage, ...], name: str) -> float:
    """Estimated seconds from the start of stage `name` to the end of the DAG (its upward rank)."""
    followers = [stage for stage in stages if name in stage.depends_on]
    own = next(stage.estimated_s for stage in stages if stage.name == name)
    return own + max((critical_path_s(stages, f.name) for f in followers), default=0.0)


def check_dag(stages: tuple[Stage, ...]) -> None:
    """Refuse unknown dependencies and cycles (declaration order must be topological)."""
    seen: set[str] = set()
    for stage in stages:
        missing = [dep for dep in stage.depends_on if dep not in seen]
        if missing:
            raise ValueError(f"stage {stage.name!r} needs {missing}, declared after it or never")
        seen.add(stage.name)


check_dag(STAGES)
