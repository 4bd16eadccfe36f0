"""Monthly content calendars: the month's life events (LLM) and posting slots (planned here).

One file per persona and month, `calendars/{persona}_{YYYY-MM}.json`; the file format, its locked
read-modify-write and the slot lifecycle belong to the store (store/calendar_file.py).
"""

from __future__ import annotations

import calendar as gregorian
import hashlib
import json
import random
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from .errors import ConfigurationError
from .llm.schema_edit import with_keywords
from .llm.session import LLMSession
from .nsfw import NSFW_RULES, NsfwLevel
from .profile import PersonaProfile
from .stages.base import Word, field_guide
from .store import (
    Calendar,
    CalendarEvent,
    Slot,
    SlotStatus,
    create_calendar,
    read_calendar,
    update_calendar,
)
from .store.layout import OutputLayout
from .store.slots import MOVE_FOR_STATUS

STAGE_NAME = "calendar"
JITTER_MINUTES = 25
DEFAULT_IMAGE_SHARE = 0.3
MAX_EVENT_DESCRIPTION_CHARS = 80
MAX_EVENTS = 6
T = TypeVar("T")


class PlannedEvent(BaseModel):
    """Something that happens in the persona's month."""

    day: int = Field(ge=1, le=31, description="day of the month")
    title: str = Field(min_length=1, max_length=60, description="short title")
    # Short and without the persona's name: each event is the subject of the posts of its day,
    # and 160-character descriptions in the third person ("Ms. Ly Thai is planning…") were
    # both a third of the month plan's tokens and what those posts copied.
    description: str = Field(max_length=MAX_EVENT_DESCRIPTION_CHARS,
                             description="what happens, in a few words, without their name")
    kind: Literal["trip", "project", "milestone", "mood", "holiday", "social", "routine",
                  "other"] = Field(description="kind of event")
    with_handles: list[Word] = Field(
        default_factory=list, max_length=3,
        description="handles of linked personas who share the event, or none",
    )

    @field_validator("day", mode="after")
    @classmethod
    def _in_month(cls, day: int, info: ValidationInfo) -> int:
        days = (info.context or {}).get("days_in_month")
        if days is not None and day > days:
            raise ValueError(f"the month has {days} days")
        return day


class MonthPlan(BaseModel):
    """The LLM's part of a calendar: themes and events."""

    themes: list[Word] = Field(min_length=1, max_length=4, description="the month's themes")
    # At most 6: on the default offline model each event is ~60 tokens of a month plan that
    # every post of the persona waits for (8 events: 494 tokens, 2.2 minutes on 2 cores).
    events: list[PlannedEvent] = Field(
        min_length=2, max_length=MAX_EVENTS,
        description="life events, holidays of their location",
    )


def parse_month(month: str) -> tuple[int, int]:
    """`2026-12` → (2026, 12), or a ConfigurationError naming the bad value."""
    try:
        parsed = datetime.strptime(month, "%Y-%m")
    except ValueError as exc:
        raise ConfigurationError(f"--month must look like 2026-12, got {month!r}") from exc
    return parsed.year, parsed.month


def calendar_path(out_dir: Path, persona: str, month: str) -> Path:
    """Where a persona's month lives."""
    return OutputLayout(out_dir).calendar_path(persona, month)


def _rng(profile: PersonaProfile, month: str) -> random.Random:
    digest = hashlib.sha256(f"{profile.key}:{month}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # reproducible per persona+month


def _apportion(shares: list[int], total: int) -> list[int]:
    """Largest-remainder split of `total` by percentage shares."""
    exact = [share * total / sum(shares) for share in shares]
    counts = [int(value) for value in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: exact[i] - counts[i], reverse=True)
    for index in by_remainder[: total - sum(counts)]:
        counts[index] += 1
    return counts


def _slot_times(profile: PersonaProfile, year: int, month: int,
                rng: random.Random) -> list[datetime]:
    """Posting moments: the cadence spread over the days, usual times with human jitter."""
    days = gregorian.monthrange(year, month)[1]
    total = max(1, round(profile.strategy.posts_per_day * days))
    per_day = [total // days] * days
    for day in rng.sample(range(days), total % days):
        per_day[day] += 1
    usual = [time.fromisoformat(t) for t in profile.strategy.posting_times]
    taken: set[datetime] = set()
    moments = []
    for day_index, count in enumerate(per_day):
        for number in range(count):
            base = usual[number % len(usual)]
            minutes = base.hour * 60 + base.minute + rng.randint(-JITTER_MINUTES, JITTER_MINUTES)
            minutes = min(max(minutes, 0), 24 * 60 - 1)
            moment = datetime(year, month, day_index + 1, minutes // 60, minutes % 60,
                              tzinfo=profile.zone)
            while moment in taken:  # never two slots at the same minute
                minutes = (minutes + 1) % (24 * 60)
                moment = moment.replace(hour=minutes // 60, minute=minutes % 60)
            taken.add(moment)
            moments.append(moment)
    return sorted(moments)


def plan_slots(profile: PersonaProfile, month: str, events: list[CalendarEvent],
               themes: list[str], image_share: float = DEFAULT_IMAGE_SHARE) -> list[Slot]:
    """The month's slots: cadence, times, pillar mix, themes and formats (pure, reproducible)."""
    year, month_number = parse_month(month)
    rng = _rng(profile, month)
    moments = _slot_times(profile, year, month_number, rng)
    pillars = profile.strategy.pillars
    counts = _apportion([pillar.share_percent for pillar in pillars], len(moments))
    assigned = [pillar.name for pillar, count in zip(pillars, counts, strict=True)
                for _ in range(count)]
    rng.shuffle(assigned)
    image_slots = set(rng.sample(range(len(moments)), round(len(moments) * image_share)))
    by_date = {event.date: event for event in events}
    slots = []
    for index, moment in enumerate(moments):
        event = by_date.get(moment.date().isoformat())
        weekly_theme = themes[(moment.day - 1) // 7 % len(themes)]
        slots.append(Slot(
            id=moment.strftime("%Y%m%d-%H%M"), scheduled_at=moment.isoformat(),
            pillar=assigned[index], theme=event.title if event else weekly_theme,
            event_id=event.id if event else None,
            format="image" if index in image_slots else "text",
        ))
    return slots


def linked_personas(out_dir: Path, persona: str) -> str:
    """Prompt lines for the batch personas this one is tied to (from social_graph.json)."""
    path = OutputLayout(out_dir).graph_path
    try:
        graph = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    nodes = {node["id"]: node for node in graph.get("nodes", [])}
    lines = [f"- {nodes[e['target']]['name']} (@{nodes[e['target']]['handle']}), {e['relation']}"
             for e in graph.get("edges", []) if e["source"] == persona and e["target"] in nodes]
    return "\n".join(lines)


def month_messages(profile: PersonaProfile, month: str, language: str,
                   nsfw_level: NsfwLevel, linked: str = "") -> list[dict[str, str]]:
    """The month-plan prompt: persona first (stable), the month last."""
    year, number = parse_month(month)
    system = (
        "You plan the life of a social-media persona for one month. Every person is an adult. "
        f"{NSFW_RULES[nsfw_level]} Write every text value in {language}. "
        "Reply with one JSON object that matches the given JSON schema, and nothing else."
    )
    user = (
        f"## Fields\n{field_guide(MonthPlan)}\n\n## Persona\n{profile.summary}\n"
        f"Lives in time zone {profile.timezone}. Posts about: "
        f"{', '.join(p.name for p in profile.strategy.pillars)}.\n\n"
        f"## Month\n{gregorian.month_name[number]} {year} "
        f"({gregorian.monthrange(year, number)[1]} days). Include the holidays of where they "
        "live, each on its own date, and a few personal events (trips, projects, moods)."
    )
    if linked:
        user += ("\n\n## People in their life who also post (an event or two may include "
                 f"them: put their handles in with_handles)\n{linked}")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


async def ensure_calendar(session: LLMSession, profile: PersonaProfile, month: str,
                          out_dir: Path, *, language: str = "English",
                          nsfw_level: NsfwLevel = "off") -> Calendar:
    """The persona's month, planned (one LLM call, cached) and written on first use."""
    path = calendar_path(out_dir, profile.key, month)
    if path.exists():
        return read_calendar(path)
    year, number = parse_month(month)
    days = gregorian.monthrange(year, number)[1]
    plan = (await session.call(
        MonthPlan,
        month_messages(profile, month, language, nsfw_level,
                       linked_personas(out_dir, profile.key)),
        stage=STAGE_NAME,
        persona=profile.key, context={"days_in_month": days},
        adjust_schema=lambda schema: with_keywords(schema, ("events", "items", "day"),
                                                   maximum=days),
    )).output
    events = [
        CalendarEvent(id=f"e{index}", date=date(year, number, event.day).isoformat(),
                      **event.model_dump())
        for index, event in enumerate(sorted(plan.events, key=lambda e: e.day), start=1)
    ]
    now = datetime.now(UTC).isoformat()
    created = Calendar(
        persona=profile.name, persona_key=profile.key, month=month, timezone=profile.timezone,
        themes=list(plan.themes), events=events,
        slots=plan_slots(profile, month, events, list(plan.themes)),
        created_at=now, updated_at=now,
    )
    return create_calendar(path, created)  # another process's plan, if first, wins



def set_slot_status(path: Path, slot_ids: list[str], status: SlotStatus) -> list[str]:
    """Move slots to `status` where the state machine allows; return why the others were not."""
    move = MOVE_FOR_STATUS[status]
    return update_calendar(path, lambda calendar: calendar.move_slots(slot_ids, move))
