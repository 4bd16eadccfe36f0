"""Which slots of an account go out in this run, and when the next one is due.

Pure: calendars in, a plan out. A slot is due when its time has come, or when `--through`
covers its day in the persona's time zone. An uncertain attempt (`publishing`) is always
handled first. With `native_schedule`, a platform that holds posts itself (Mastodon's
`scheduled_at`) gets future slots ahead of time, within its lead time and its limits.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ..store import Account, Calendar, Slot
from .base import NativeSchedule, PlatformSpec


@dataclass(frozen=True)
class SendItem:
    """One slot to send in this run (`schedule`: hand it to the platform's own scheduler)."""

    path: Path
    calendar: Calendar
    slot: Slot
    when: datetime
    schedule: datetime | None = None


@dataclass
class Plan:
    """An account's sends for this run, what waits, and when the next one is due."""

    sends: list[SendItem] = field(default_factory=list)
    # Posts the platform's scheduler held whose time has come: their live URL is looked up.
    gone_live: list[SendItem] = field(default_factory=list)
    upcoming: list[tuple[str, str, datetime]] = field(default_factory=list)
    next_due: datetime | None = None


def _when(slot: Slot, zone: ZoneInfo) -> datetime:
    moment = datetime.fromisoformat(slot.scheduled_at)
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(zone)


def _is_due(when: datetime, now: datetime, through: date | None) -> bool:
    return when <= now or (through is not None and when.date() <= through)


class _NativeBudget:
    """What the platform's scheduler still takes: pending posts and posts per day."""

    def __init__(self, rules: NativeSchedule, calendars: list[tuple[Path, Calendar]],
                 now: datetime) -> None:
        self.rules, self.now = rules, now
        held = [_when(slot, calendar.zone) for _, calendar in calendars
                for slot in calendar.slots
                if slot.status == "posted" and slot.publish and slot.publish.scheduled]
        future = [when for when in held if when > now]
        self.pending = len(future)
        self.per_day = Counter(when.date() for when in future)

    def take(self, when: datetime) -> bool:
        """Whether a post for `when` fits (and count it if it does)."""
        rules = self.rules
        if when - self.now < timedelta(seconds=rules.min_lead_s):
            return False
        if rules.max_pending is not None and self.pending >= rules.max_pending:
            return False
        if rules.max_per_day is not None and self.per_day[when.date()] >= rules.max_per_day:
            return False
        self.pending += 1
        self.per_day[when.date()] += 1
        return True


def plan_account(calendars: list[tuple[Path, Calendar]], spec: PlatformSpec, account: Account,
                 *, now: datetime, through: date | None) -> Plan:
    """The account's sends for this run: uncertain attempts, then due slots, oldest first."""
    plan = Plan()
    native = (_NativeBudget(spec.native_schedule, calendars, now)
              if account.native_schedule and spec.native_schedule else None)
    uncertain, due = [], []
    for path, calendar in calendars:
        zone = calendar.zone
        for slot in calendar.slots:
            when = _when(slot, zone)
            if slot.status == "publishing":
                # A future slot only ever left early for the platform's own scheduler: if it
                # must be sent again, it goes back there, not out at once.
                ahead = None if _is_due(when, now, through) else when
                uncertain.append(SendItem(path, calendar, slot, when, schedule=ahead))
            elif slot.status == "posted" and slot.publish and slot.publish.scheduled:
                if when <= now:
                    plan.gone_live.append(SendItem(path, calendar, slot, when))
            elif slot.status != "approved":
                continue
            elif _is_due(when, now, through):
                due.append(SendItem(path, calendar, slot, when))
            elif native is not None and native.take(when):
                due.append(SendItem(path, calendar, slot, when, schedule=when))
            else:
                plan.upcoming.append((calendar.persona_key, slot.id, when))
                if plan.next_due is None or when < plan.next_due:
                    plan.next_due = when
    plan.sends = uncertain + sorted(due, key=lambda item: item.when)
    return plan
