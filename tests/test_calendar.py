"""Calendars: slot planning, the LLM month plan, locked updates across real processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import server_settings
from openai_server import Reply
from persona_foundry.calendar import (
    JITTER_MINUTES,
    CalendarEvent,
    calendar_path,
    ensure_calendar,
    plan_slots,
    read_calendar,
)
from persona_foundry.cli import app
from persona_foundry.errors import ConfigurationError
from persona_foundry.llm.session import LLMSession
from persona_foundry.profile import PersonaProfile, load_profile
from persona_foundry.stages.strategy import TweetStrategy
from stage_replies import CALENDAR_REPLY, STAGE_REPLIES, content_reply

MONTH = "2026-12"
TESTS = Path(__file__).parent


def profile(**strategy_changes: object) -> PersonaProfile:
    strategy = TweetStrategy.model_validate({**STAGE_REPLIES["strategy"], **strategy_changes})
    return PersonaProfile(key="ava", card_path=Path("ava_persona.json"), name="Ava",
                          handle="ava", timezone="America/Chicago", summary="{}",
                          strategy=strategy)


EVENTS = [CalendarEvent(id="e1", date="2026-12-05", day=5, title="Test flight",
                        description="", kind="project")]


def test_slots_follow_cadence_times_and_mix() -> None:
    slots = plan_slots(profile(), MONTH, EVENTS, ["launch prep"])

    assert len(slots) == 62  # 2 posts a day × 31 days
    moments = [datetime.fromisoformat(slot.scheduled_at) for slot in slots]
    assert len({m.replace(second=0) for m in moments}) == len(moments)  # never the same minute
    assert moments == sorted(moments)
    usual = [time(8, 15), time(19, 30)]
    for moment in moments:
        gaps = [abs(moment.hour * 60 + moment.minute - t.hour * 60 - t.minute) for t in usual]
        assert min(gaps) <= JITTER_MINUTES + 1
    assert all(m.tzinfo is not None and m.utcoffset() == timedelta(hours=-6) for m in moments)
    assert Counter(slot.pillar for slot in slots) == {"engineering": 31, "gliding": 19,
                                                     "baking": 12}
    images = sum(slot.format == "image" for slot in slots)
    assert images == round(62 * 0.3)
    on_event = [slot for slot in slots if slot.scheduled_at.startswith("2026-12-05")]
    assert on_event and all(s.event_id == "e1" and s.theme == "Test flight" for s in on_event)


def test_slot_planning_is_reproducible_and_honours_fractions() -> None:
    first = plan_slots(profile(posts_per_day=0.5), MONTH, [], ["t"])
    again = plan_slots(profile(posts_per_day=0.5), MONTH, [], ["t"])
    assert first == again
    assert len(first) == 16  # round(0.5 × 31)
    assert len({slot.scheduled_at[:10] for slot in first}) == 16  # spread over different days


def test_bad_month_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="2026-12"):
        plan_slots(profile(), "December", [], ["t"])


def test_month_plan_comes_from_the_llm_once(start_server, make_image, tmp_path: Path) -> None:
    server = start_server(content_reply)
    card = _make_card(server, make_image, tmp_path)

    async def plan_twice() -> None:
        async with LLMSession.open(server_settings(server), tmp_path / "out") as session:
            await ensure_calendar(session, load_profile(card), MONTH, tmp_path / "out")
            await ensure_calendar(session, load_profile(card), MONTH, tmp_path / "out")

    asyncio.run(plan_twice())
    calendar = read_calendar(calendar_path(tmp_path / "out", "ava", MONTH))
    assert [event.title for event in calendar.events] == ["Test flight", "Christmas Eve"]
    assert calendar.events[1].date == "2026-12-24"
    assert len(server.chat_requests("calendar")) == 1
    assert "December 2026 (31 days)" in server.chat_requests("calendar")[0].text


def test_event_day_outside_the_month_is_reasked(start_server, make_image,
                                                tmp_path: Path) -> None:
    replies = [{**CALENDAR_REPLY, "events": [{**CALENDAR_REPLY["events"][0], "day": 31}] * 2}]

    def responder(body):
        if body["response_format"]["json_schema"]["name"] == "calendar" and replies:
            return Reply(json.dumps(replies.pop()))
        return content_reply(body)

    server = start_server(responder)
    card = _make_card(server, make_image, tmp_path)
    result = CliRunner().invoke(app, ["calendar", str(card), "--month", "2026-11", "--out",
                                      str(tmp_path / "out"), "--show"],
                                env=_env(server))
    assert result.exit_code == 0, result.output
    reask = server.chat_requests("calendar")[1].text
    assert "the month has 30 days" in reask


def test_two_processes_updating_one_calendar_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "calendars" / "ava_2026-12.json"
    path.parent.mkdir()
    slots = plan_slots(profile(), MONTH, [], ["t"])
    path.write_text(json.dumps({
        "persona": "Ava", "persona_key": "ava", "month": MONTH, "timezone": "UTC",
        "themes": ["t"], "events": [], "slots": [s.model_dump() for s in slots],
        "created_at": "x", "updated_at": "x",
    }))
    workers = [subprocess.Popen([sys.executable, str(TESTS / "calendar_worker.py"), str(path),
                                 str(first), str(first + 30)])
               for first in (0, 30)]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0]

    calendar = read_calendar(path)
    drafted = [slot for slot in calendar.slots if slot.status == "drafted"]
    assert len(drafted) == 60
    assert Counter(slot.text for slot in drafted) == {"drafted by 0": 30, "drafted by 30": 30}


def _env(server) -> dict[str, str]:
    return {"LLM_BASE_URL": server.base_url, "LLM_API_KEY": "k", "LLM_MODEL": "m"}


def _make_card(server, make_image, tmp_path: Path) -> Path:
    result = CliRunner().invoke(app, ["persona", str(make_image("ava.png")), "--out",
                                      str(tmp_path / "out")], env=_env(server))
    assert result.exit_code == 0, result.output
    return tmp_path / "out" / "personas" / "ava_persona.json"
