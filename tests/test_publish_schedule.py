"""Which slots go out in a run: due times in the persona's zone, native scheduling's limits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from persona_foundry.publish import PLATFORMS
from persona_foundry.publish.schedule import _is_due, plan_account
from persona_foundry.store import Account, Calendar, PublishRecord, Slot

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
ZONE = ZoneInfo("America/New_York")


def _calendar(moments: list[datetime], status: str = "approved") -> Calendar:
    slots = [Slot(id=f"s{n:03d}", scheduled_at=when.astimezone(ZONE).isoformat(), pillar="p",
                  theme="t", status=status, text=f"post {n}")  # type: ignore[arg-type]
             for n, when in enumerate(moments)]
    return Calendar(persona="Ava", persona_key="ava", month="2026-12",
                    timezone="America/New_York", themes=[], events=[], slots=slots,
                    created_at="", updated_at="")


def _account(native: bool) -> Account:
    return Account(persona="ava", platform="mastodon", api_base="https://m.test",
                   native_schedule=native)


def test_mastodon_native_scheduling_keeps_to_fifty_a_day() -> None:
    day = [NOW + timedelta(hours=12, minutes=n * 10) for n in range(60)]  # one day, 60 posts
    plan = plan_account([(Path("c.json"), _calendar(day))], PLATFORMS["mastodon"],
                        _account(native=True), now=NOW, through=None)
    assert sum(item.schedule is not None for item in plan.sends) == 50
    assert len(plan.upcoming) == 10 and plan.next_due is not None


def test_mastodon_native_scheduling_keeps_to_three_hundred_pending_and_five_minutes_ahead(
        ) -> None:
    held = _calendar([NOW + timedelta(days=1 + n // 40, minutes=n) for n in range(298)],
                     status="posted")
    for slot in held.slots:
        slot.publish = PublishRecord(platform="mastodon", scheduled=True)
    soon = [NOW + timedelta(minutes=2)] + [NOW + timedelta(days=20, hours=n) for n in range(5)]
    plan = plan_account([(Path("a.json"), held), (Path("b.json"), _calendar(soon))],
                        PLATFORMS["mastodon"], _account(native=True), now=NOW, through=None)
    scheduled = [item.slot.id for item in plan.sends if item.schedule is not None]
    assert scheduled == ["s001", "s002"]  # 298 + 2 = 300; s000 is under 5 minutes ahead
    assert [slot_id for _, slot_id, _ in plan.upcoming] == ["s000", "s003", "s004", "s005"]


def test_without_native_scheduling_only_due_slots_go_and_uncertain_ones_first() -> None:
    calendar = _calendar([NOW - timedelta(hours=2), NOW - timedelta(hours=1),
                          NOW + timedelta(hours=1)])
    calendar.slots[1].status = "publishing"
    plan = plan_account([(Path("c.json"), calendar)], PLATFORMS["mastodon"],
                        _account(native=False), now=NOW, through=None)
    assert [item.slot.id for item in plan.sends] == ["s001", "s000"]
    assert plan.next_due == datetime.fromisoformat(calendar.slots[2].scheduled_at)


def test_through_date_is_read_in_the_personas_zone() -> None:
    # 23:30 in New York on the 5th is already the 6th in UTC: --through 2026-12-05 covers it.
    late = datetime(2026, 12, 5, 23, 30, tzinfo=ZONE)
    assert _is_due(late, NOW, date(2026, 12, 5))
    assert not _is_due(late, NOW, date(2026, 12, 4))


def test_an_uncertain_attempt_of_a_future_slot_goes_back_to_the_platforms_scheduler() -> None:
    calendar = _calendar([NOW + timedelta(days=2)], status="publishing")
    plan = plan_account([(Path("c.json"), calendar)], PLATFORMS["mastodon"],
                        _account(native=True), now=NOW, through=None)
    assert [item.schedule for item in plan.sends] == [
        datetime.fromisoformat(calendar.slots[0].scheduled_at)]
