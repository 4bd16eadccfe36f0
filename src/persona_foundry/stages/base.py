"""What a stage is: a name, its dependencies, an output model and a prompt builder."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from ..nsfw import NSFW_RULES, NsfwLevel

# Every string has a maxLength and every list a maxItems: small models loop without them.
Word = Annotated[str, Field(min_length=1, max_length=40)]
Line = Annotated[str, Field(min_length=1, max_length=120)]
Message = dict[str, Any]


@dataclass(frozen=True)
class PersonaInput:
    """What every stage of a persona knows before any model is asked (the shared part)."""

    image_name: str
    visual_facts: str
    image_data_url: str | None = None
    hint: str | None = None
    language: str = "English"
    nsfw_level: NsfwLevel = "off"


@dataclass(frozen=True)
class InputParam:
    """An input one stage consumes beyond the shared `PersonaInput` (diffusers' `InputParam`).

    The pipeline supplies it by this name from its table of input sources
    (`pipeline.PERSONA_INPUTS`, `pipeline.BATCH_INPUTS`), never by the stage's name; `default`
    stands in where the run has no source for it (a single persona has no batch peers).
    """

    name: str
    description: str
    default: Any = None


@dataclass
class StageContext:
    """A stage's inputs: the persona's shared input, the outputs of the stages it depends on,
    and the extra inputs it declares (`Stage.inputs`), by name."""

    persona: PersonaInput
    outputs: dict[str, BaseModel] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)

    def output_json(self, stage: str) -> str:
        """A dependency's output as compact JSON for a prompt."""
        return self.outputs[stage].model_dump_json()


@dataclass(frozen=True)
class Stage:
    """One node of the persona DAG, declared as data."""

    name: str
    depends_on: tuple[str, ...]
    output_model: type[BaseModel]
    build_messages: Callable[[StageContext], list[Message]]
    # The original design's measured seconds for this stage: weights for critical-path priority.
    estimated_s: float
    adjust_schema: Callable[[dict[str, Any], StageContext], dict[str, Any]] | None = None
    # The stage can use the image itself: it is attached when the model it calls can see.
    sees_image: bool = False
    # The stage's calls go to LLM_VISION_MODEL when one is set (unless STAGE_MODELS names one).
    uses_vision_model: bool = False
    # The extra inputs its prompt, schema or validators read (`ctx.inputs[name]`); one that
    # comes from the batch (its peers) makes the stage wait for the batch to know it.
    inputs: tuple[InputParam, ...] = ()
    # The stage's output says who the persona is in the batch (the batch linker's member).
    describes_member: bool = False
    # No card is written without this stage's output.
    required: bool = False
    # Where the output lands in the card: `data.extensions.persona_foundry.{card_key}` (the
    # stage's name unless given).
    card_key: str = ""
    # Facts from the stage's dependencies its validators check against (e.g. the strategy's
    # hashtag habit for stage 3's posts).
    checks_context: Callable[[StageContext], dict[str, Any]] | None = None

    @property
    def output_key(self) -> str:
        """The key of this stage's output in our card extension."""
        return self.card_key or self.name

    def context(self, persona: PersonaInput, outputs: Mapping[str, BaseModel] | None = None,
                supplied: Mapping[str, Any] | None = None) -> StageContext:
        """This stage's context: each declared input from `supplied`, else its default."""
        given = supplied or {}
        return StageContext(persona, dict(outputs or {}),
                            {param.name: given.get(param.name, param.default)
                             for param in self.inputs})

    def validation_context(self, ctx: StageContext) -> dict[str, Any]:
        """Run facts its validators read: its declared inputs (e.g. the lorebook's entry count)
        and the facts its `checks_context` takes from its dependencies."""
        extra = self.checks_context(ctx) if self.checks_context else {}
        return {**ctx.inputs, **extra}


def system_message(ctx: StageContext, role: str) -> Message:
    """The shared system prompt: role, language, content rules, JSON-only replies."""
    persona = ctx.persona
    return {
        "role": "system",
        "content": (
            f"{role}\n"
            f"Write every text value in {persona.language}. "
            "Every person is an adult aged 18 or over. "
            f"{NSFW_RULES[persona.nsfw_level]}\n"
            "Reply with one JSON object that matches the given JSON schema, and nothing else."
        ),
    }


def user_message(*sections: tuple[str, str]) -> Message:
    """A user message built from titled sections, stable parts first so prompt caches hit."""
    body = "\n\n".join(f"## {title}\n{text}" for title, text in sections if text)
    return {"role": "user", "content": body}


def stage_messages(
    ctx: StageContext, *, role: str, task: str, stage: Stage,
    extra: tuple[tuple[str, str], ...] = (),
) -> list[Message]:
    """The usual prompt: a role, the task, the output's fields, extras, the dependency outputs
    (the fields and the dependencies as `stage` declares them)."""
    return [
        system_message(ctx, role),
        user_message(
            ("Task", task), ("Fields", field_guide(stage.output_model)), *extra,
            *persona_sections(ctx, *stage.depends_on),
        ),
    ]


def with_image(message: Message, data_url: str | None) -> Message:
    """The message with the image attached as an OpenAI content part, when there is one."""
    if not data_url:
        return message
    return {
        **message,
        "content": [
            {"type": "text", "text": message["content"]},
            {"type": "image_url", "image_url": {"url": data_url}},
        ],
    }


def persona_sections(ctx: StageContext, *stages: str) -> list[tuple[str, str]]:
    """Prompt sections holding the named dependency outputs."""
    return [(f"Persona {stage}", ctx.output_json(stage)) for stage in stages]


@cache  # a model's fields do not change: built once, not on the event loop at every call
def field_guide(model: type[BaseModel], indent: str = "") -> str:
    """The output fields and their meaning as short prompt lines (cheaper than a whole schema).

    Models that ignore `response_format` and small local models both write better JSON when the
    prompt names every key; the schema itself still constrains and validates.
    """
    lines = []
    for name, info in model.model_fields.items():
        lines.append(f"{indent}- {name}: {info.description or ''}".rstrip(": "))
        nested = _nested_model(info.annotation)
        if nested is not None:
            lines.append(field_guide(nested, indent + "  "))
    return "\n".join(lines)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


StageStatus = Literal["ok", "failed", "skipped"]


@dataclass
class StageResult:
    """What happened to one stage of one persona."""

    stage: str
    status: StageStatus
    output: BaseModel | None = None
    error: str | None = None
    from_cache: bool = False
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    started_s: float = 0.0
    finished_s: float = 0.0
