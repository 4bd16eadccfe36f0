"""`publish --watch`: a long-running publisher that sleeps until the next due slot.

All state is on disk (calendars, ledger), so a restart picks up where the last run stopped;
an attempt a crash left `publishing` is checked with the platform first. SIGTERM (systemd's
stop) sets the publisher's stop event: a post in flight is finished and recorded, nothing new
starts, and the loop returns.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime

from .publisher import Publisher, PublishSummary

log = logging.getLogger(__name__)
# Re-read the calendars at least this often: a slot approved in the studio meanwhile, or an
# account added, is picked up without a restart.
MAX_WATCH_SLEEP_S = 300.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def sleep_s(next_due: datetime | None, now: datetime) -> float:
    """Seconds until the next due slot, at most MAX_WATCH_SLEEP_S (none due: the maximum)."""
    if next_due is None:
        return MAX_WATCH_SLEEP_S
    return min(MAX_WATCH_SLEEP_S, max(0.0, (next_due - now).total_seconds()))


async def watch(publisher: Publisher, report: Callable[[PublishSummary], None]) -> int:
    """Publish due slots, sleep until the next, repeat until SIGTERM/SIGINT; return the number
    of rounds run."""
    loop = asyncio.get_running_loop()
    for sent in STOP_SIGNALS:
        loop.add_signal_handler(sent, publisher.stop.set)
    rounds = 0
    try:
        while not publisher.stop.is_set():
            summary = await publisher.run_once()
            rounds += 1
            report(summary)
            wait = sleep_s(summary.next_due, datetime.now(UTC))
            log.info("sleeping %.0f s (next due: %s)", wait,
                     summary.next_due.isoformat() if summary.next_due else "none")
            if await publisher.pause(wait):
                break
    finally:
        for sent in STOP_SIGNALS:
            loop.remove_signal_handler(sent)
    return rounds
