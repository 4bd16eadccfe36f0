"""The throughput dispatcher: every persona's post calls, one batch whenever the concurrency
window has room.

The dispatcher owns each persona's line of slots still to send (`_Line`); a persona's writer
only answers `call`, `settle` (which slots go again) and `save`. The window comes from an
explicit source, a function the caller passes (the pool's adaptive limit in a run).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..store import Slot
from .prompting import TweetBatch

# Replies come in bursts, and every reply starts the next call. Judging a reply (~2 ms of CPU)
# while others wait to be read would leave the server's freed slots idle meanwhile; so replies
# are judged one at a time, once none has come in for JUDGE_QUIET_S (the client's turnaround
# of a reply into the next request), and at most JUDGE_DELAY_S after their own came in; at once
# when no slot is left to send (then no call waits on them, and judging sooner ends the run
# sooner).
JUDGE_QUIET_S = 0.004
JUDGE_DELAY_S = 0.25
Reply = TweetBatch | str


class SlotWriter(Protocol):
    """What the dispatcher asks of a persona: a call, its verdict, a save."""

    async def call(self, batch: list[Slot]) -> tuple[Reply, tuple[int, int]]:
        """One LLM call for `batch` (RunStoppedError is raised)."""

    def settle(self, batch: list[Slot], reply: Reply, tokens: tuple[int, int]) -> list[Slot]:
        """Judge a reply; return the slots to send again."""

    def save(self, *, now: bool) -> None:
        """Persist now, or when the last save is old enough."""


@dataclass(frozen=True)
class JudgePacing:
    """When a reply is judged (see JUDGE_QUIET_S)."""

    quiet_s: float = JUDGE_QUIET_S
    delay_s: float = JUDGE_DELAY_S


@dataclass(eq=False)
class _Line:
    """One persona's slots still to send, its calls out, and the event its `fill` waits on."""

    writer: SlotWriter
    pending: deque[Slot] = field(default_factory=deque)
    calls_out: int = 0
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def take(self, size: int) -> list[Slot]:
        """The next batch: slots to retry first, then fresh ones in calendar order."""
        batch = [self.pending.popleft() for _ in range(min(size, len(self.pending)))]
        self.calls_out += 1
        return batch


def _apportion_calls(calls: dict[_Line, int], pending: dict[_Line, int], total: int) -> None:
    """Raise the personas' call counts towards `total`, in proportion to their slots (largest
    remainder first; never more calls than slots)."""
    left = sum(pending.values())
    if not left:
        return
    wanted = {line: total * count / left for line, count in pending.items()}
    for line, count in pending.items():
        calls[line] = max(calls[line], min(count, int(wanted[line])))
    by_remainder = sorted(pending, key=lambda t: wanted[t] - int(wanted[t]), reverse=True)
    for line in by_remainder:
        if sum(calls.values()) >= total:
            return
        if calls[line] < pending[line]:
            calls[line] += 1


def _next_sender(waiting: list[_Line], sizes: dict[_Line, deque[int]]) -> _Line:
    """The persona whose next planned call is largest (then: with the most slots left). The
    larger calls, sent in a row, fall one to each slot of the window as the slots free in
    turn; sent as they come they doubled up on some slots, which then ran ~0.1 s longer."""
    return max(waiting, key=lambda line: (sizes[line][0], len(line.pending)))


class CallDispatcher:
    """Sends every persona's post calls, one batch whenever the concurrency window has room.

    The slots left are planned as whole rounds of the window (as few as `slots_per_call`
    allows), each persona's in calls of about one size, the odd slots one each to its first
    calls: every slot of the window then does about the same work and ends its last call when
    the others do, instead of a last round of a few calls with most of the window idle (1000
    posts, 20 at once, up to 8 per call: 7 calls of 7 or 8 posts for every slot, not 6 rounds
    of 8 and a seventh of 40 posts). Rejected slots are sent again at once, first in their
    persona's line, in the calls planned next; the larger calls go first, across personas.
    One call more than the window is kept out (it waits in the pool), so a freed slot is
    taken at once rather than after the client's turnaround.
    """

    def __init__(self, window: Callable[[], int], slots_per_call: int,
                 checks_ready: Awaitable[object], pacing: JudgePacing = JudgePacing()) -> None:
        self._window, self.slots_per_call = window, slots_per_call
        self.checks_ready, self.pacing = checks_ready, pacing
        # Each persona's planned calls: their sizes, in sending order.
        self._sizes: dict[_Line, deque[int]] = {}
        self._planned_window = 0
        self._sent = 0
        self.ended_by: Exception | None = None
        self._lines: list[_Line] = []
        self._calls: set[asyncio.Task[None]] = set()  # waiting for their reply
        self._tasks: set[asyncio.Task[None]] = set()  # until their reply is judged
        self._judging = asyncio.Lock()
        self._last_reply_at = 0.0

    async def fill(self, writer: SlotWriter, slots: list[Slot]) -> None:
        """Draft `slots`; returns when each is drafted or failed, raises what ended the run."""
        if not slots:
            return
        line = _Line(writer, deque(slots))
        self._lines.append(line)
        self._planned_window = 0  # plan again, with these slots
        self._send()
        if self.ended_by is None:
            await line.finished.wait()
        if self.ended_by is not None:
            writer.save(now=True)
            raise self.ended_by

    async def stop(self, reason: Exception) -> None:
        """Send nothing more; judge and save the calls already out."""
        self.ended_by = self.ended_by or reason
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _send(self) -> None:
        while self.ended_by is None and len(self._calls) < self._window() + 1:
            waiting = [line for line in self._lines if line.pending]
            if not waiting:
                return
            self._keep_plan(waiting)
            line = _next_sender(waiting, self._sizes)
            batch = line.take(self._sizes[line].popleft())
            self._sent += 1
            task = asyncio.create_task(self._call(line, batch))
            self._calls.add(task)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _keep_plan(self, waiting: list[_Line]) -> None:
        """Plan again when the window or the slots changed; rejected slots join planned calls."""
        planned = {line: sum(self._sizes.get(line, ())) for line in waiting}
        if self._window() != self._planned_window or any(
                len(line.pending) < planned[line] or not planned[line] for line in waiting):
            self._plan()
            return
        for line in waiting:
            if len(line.pending) > planned[line]:
                self._plan_more(self._sizes[line], len(line.pending) - planned[line])

    def _plan(self) -> None:
        """Each persona's slots left as calls of about one size, so many that the run's calls
        come to a whole number of rounds of the window, as few as `slots_per_call` allows
        (one stream: full calls)."""
        window = self._planned_window = self._window()
        pending = {line: len(line.pending) for line in self._lines}
        fewest = {line: -(-count // self.slots_per_call) for line, count in pending.items()}
        calls = dict(fewest)
        if window > 1:
            rounds = -(-(self._sent + sum(fewest.values())) // window)
            _apportion_calls(calls, pending, window * rounds - self._sent)
        for line, count in pending.items():
            if window == 1:
                full, rest = divmod(count, self.slots_per_call)
                self._sizes[line] = deque([self.slots_per_call] * full + [rest] * (rest > 0))
            else:
                smaller, larger = divmod(count, calls[line]) if count else (0, 0)
                self._sizes[line] = deque(
                    [smaller + 1] * larger + [smaller] * (calls[line] - larger))

    def _plan_more(self, sizes: deque[int], slots: int) -> None:
        """Add slots to the first planned calls that have room, else as calls of their own."""
        for index, size in enumerate(sizes):
            added = min(slots, self.slots_per_call - size)
            sizes[index] += added
            slots -= added
        while slots > 0:
            sizes.appendleft(min(slots, self.slots_per_call))
            slots -= sizes[0]

    async def _call(self, line: _Line, batch: list[Slot]) -> None:
        reply: Reply | None = None
        tokens = (0, 0)
        try:
            reply, tokens = await line.writer.call(batch)
        except Exception as exc:  # RunStoppedError, or a bug: end the run rather than hang it
            self.ended_by = self.ended_by or exc
        self._calls.discard(asyncio.current_task())
        self._send()  # before judging: the free slot is taken at once
        replied_at = self._last_reply_at = time.monotonic()
        async with self._judging:
            await self._quiet(replied_at)
            try:
                await self.checks_ready  # the language model, loaded in a thread meanwhile
                self._settle(line, batch, reply, tokens)
                self._send()  # the rejected slots
                line.writer.save(now=self._close(line))
            except Exception as exc:  # a full disk, checks that failed to load: the run ends
                self.ended_by = self.ended_by or exc
        if self.ended_by is not None:
            for other in self._lines:
                self._close(other)

    @staticmethod
    def _settle(line: _Line, batch: list[Slot], reply: Reply | None,
                tokens: tuple[int, int]) -> None:
        """The call is back (None: the run stopped first); rejected slots go first in line."""
        line.calls_out -= 1
        if reply is not None:
            line.pending.extendleft(reversed(line.writer.settle(batch, reply, tokens)))

    async def _quiet(self, replied_at: float) -> None:
        """Return once no reply has come in for the quiet time, or the longest delay after
        ours, or no slot is left to send."""
        await asyncio.sleep(0)  # what is ready now (a reply, a request going out) goes first
        # A loop of sleeps, not an event: each new reply moves the deadline.
        while (wait := self._judging_wait_s(replied_at)) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)

    def _judging_wait_s(self, replied_at: float) -> float:
        if not any(line.pending for line in self._lines):
            return 0.0
        return min(self._last_reply_at + self.pacing.quiet_s,
                   replied_at + self.pacing.delay_s) - time.monotonic()

    def _close(self, line: _Line) -> bool:
        """Wake the persona's `fill` when it has nothing left to wait for; True when it did."""
        done = not line.calls_out and (not line.pending or self.ended_by is not None)
        if done and not line.finished.is_set():
            line.finished.set()
            return True
        return False
