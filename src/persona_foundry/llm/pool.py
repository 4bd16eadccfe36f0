"""The one concurrency limit and failure state shared by every call in a run."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import deque

from ..costs import CHARS_PER_TOKEN_ESTIMATE, BudgetGuard
from ..errors import EndpointError, TransportError
from .adaptive import AdaptiveWindow
from .client import BackendError, ChatBackend, ChatRequest, Completion
from .ratelimit import RateLimiter
from .retry import RATE_LIMITED, is_fatal, retry_delay, server_retry_after_s, should_retry

log = logging.getLogger(__name__)
# Above this share of the limit, free slots go to the best of the callers that arrive within
# COALESCE_S, not to the first (a few ms against LLM calls that take seconds).
CONTENTION_SHARE = 0.75
COALESCE_S = 0.01


class PriorityLimiter:
    """A semaphore whose waiters are served lowest priority value first, FIFO within a value."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._sequence = itertools.count()
        self._dispatch: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        """How many callers are queued for a slot."""
        return sum(1 for _, _, fut in self._waiters if not fut.done())

    async def acquire(self, priority: float = 0.0) -> None:
        """Take a slot, waiting behind callers of a lower priority value.

        Near the limit, a free slot is not given to the first caller: callers arriving within
        COALESCE_S are ranked first, so when several personas finish stage 1 at once their
        critical stages are not crowded out by whichever persona's leaves came first.
        """
        if self.in_use < self.limit * CONTENTION_SHARE and not self.waiting:
            self.in_use += 1
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._waiters, (priority, next(self._sequence), future))
        if self.in_use < self.limit and self._dispatch is None:
            self._dispatch = loop.call_later(COALESCE_S, self._dispatch_waiters)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            raise

    def _dispatch_waiters(self) -> None:
        self._dispatch = None
        while self.in_use < self.limit and self._hand_over():
            self.in_use += 1

    def set_limit(self, limit: int) -> None:
        """Change the limit; a higher one admits waiters now, a lower one as calls end."""
        self.limit = limit
        while self.in_use < self.limit and self._hand_over():
            self.in_use += 1

    def _hand_over(self) -> bool:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return True
        return False

    def release(self) -> None:
        """Hand the slot to the best waiter, or free it (or retire it, above a lowered limit)."""
        if self.in_use > self.limit:
            self.in_use -= 1
            return
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self.in_use -= 1


class CpuTurns:
    """Turns for the event loop's CPU work: one per loop iteration, after that iteration's I/O.

    A call's Python on the client (its fingerprint, cache lookup and send; validating its reply
    with the post checks; logging it and building the next prompts: ~1-2 ms in all) runs on the
    one thread that also reads the other replies and sends the calls freed slots go to. When a
    round of replies came back together, each waited behind all the work queued ahead of it
    before its slot was handed on: at 400 calls a second the slots sat ~10 ms a call outside
    the server.
    A caller takes a turn before each piece of that work. asyncio runs the callbacks of ready
    I/O before the timers that fall due, so a turn given from a timer comes after whatever the
    transport has to do, and each iteration does at most one piece.
    """

    def __init__(self) -> None:
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def take(self) -> None:
        """Return once this caller's turn comes (it holds nothing: nothing to give back)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A loop that ended with callers waiting left its timer behind: they are gone.
            self._waiters.clear()
            self._timer, self._loop = None, loop
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.append(future)
        if self._timer is None:
            self._timer = loop.call_later(0, self._let_one_through)
        await future

    async def take_deferring_cancel(self) -> asyncio.CancelledError | None:
        """`take`, for a caller holding a paid reply it must log first: a cancellation that
        comes while it waits is returned, for the caller to raise once the reply is logged."""
        try:
            await self.take()
        except asyncio.CancelledError as cancelled:
            return cancelled
        return None

    def _let_one_through(self) -> None:
        self._timer = None
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():  # a cancelled caller's place is skipped
                future.set_result(None)
                break
        if self._waiters:
            self._timer = asyncio.get_running_loop().call_later(0, self._let_one_through)


class LLMPool:
    """Every call of a run goes through here: one limit, transport retries, one fatal state."""

    def __init__(
        self, backend: ChatBackend, *, max_concurrent: int, max_attempts: int,
        retry_delay_scale: float = 1.0, budget: BudgetGuard | None = None,
        rpm: float | None = None, tpm: float | None = None,
    ) -> None:
        self.backend = backend
        parallel = max_concurrent
        if backend.max_parallel is not None:
            parallel = min(parallel, backend.max_parallel)
        self.limiter = PriorityLimiter(parallel)
        self.max_attempts = max_attempts
        self._retry_delay_scale = retry_delay_scale
        self._fatal: EndpointError | None = None
        self.budget = budget or BudgetGuard(None, {})
        # Only a remote endpoint has a speed to find; the local model has one stream anyway.
        self.window = AdaptiveWindow(parallel) if backend.max_parallel is None else None
        self._apply_window()
        self._rpm, self._tpm = rpm, tpm
        self._rate_limiters: dict[str, RateLimiter] = {}
        self.cpu_turns = CpuTurns()  # shared by every caller of this run's calls

    def rate_limiter(self, model: str) -> RateLimiter:
        """The buckets of this endpoint and model."""
        if model not in self._rate_limiters:
            self._rate_limiters[model] = RateLimiter(self._rpm, self._tpm)
        return self._rate_limiters[model]

    async def _wait_out_pause(self) -> None:
        # A loop, not one sleep: another 429 may extend the pause while we wait.
        while self.window is not None and (pause := self.window.pause_left_s()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(pause)

    def _adapt(self, completion: Completion | None, failure: BackendError | None,
               kind: str = "") -> None:
        if self.window is None:
            return
        if failure is not None and failure.status_code == RATE_LIMITED:
            self.window.on_rate_limited(server_retry_after_s(failure.headers))
        elif completion is not None:
            self.window.on_success(completion.latency_s, kind, completion.completion_tokens)
        self._apply_window()

    def _apply_window(self) -> None:
        """The window to the backend, and to the limiter with the calls the backend queues
        beyond it (llm/http_worker.py sends those the moment a slot frees)."""
        if self.window is None:
            return
        # A backend written before queues existed has neither: it sends at once.
        set_window = getattr(self.backend, "set_window", None)
        if set_window is not None:
            set_window(self.window.limit, self.window.paused_until)
        self.limiter.set_limit(self.window.limit + getattr(self.backend, "queued_ahead", 0))

    @property
    def send_limit(self) -> int:
        """Calls the endpoint may have in flight now (the window, without the queue)."""
        return self.window.limit if self.window is not None else self.limiter.limit

    @property
    def in_flight(self) -> int:
        """Calls holding a slot now."""
        return self.limiter.in_use

    async def check(self) -> None:
        """Preflight the backend once per run (wrong key, unreachable endpoint)."""
        await self.backend.check()

    async def complete(self, request: ChatRequest, *, priority: float = 0.0) -> Completion:
        """Send request under the shared limit, retrying transport failures per llm/retry.py."""
        prompt_chars = request.prompt_chars
        estimated_tokens = prompt_chars / CHARS_PER_TOKEN_ESTIMATE + request.max_tokens
        buckets = self.rate_limiter(request.model)
        for attempt in range(1, self.max_attempts + 1):
            self._raise_if_fatal()
            await self._wait_out_pause()
            await buckets.acquire(estimated_tokens)
            await self.limiter.acquire(priority)
            reserved = 0.0
            completion: Completion | None = None
            try:
                self._raise_if_fatal()
                reserved = self.budget.reserve(request.model, prompt_chars, request.max_tokens)
                completion = await self.backend.complete(request)
            except BackendError as failure:
                self.budget.settle(reserved, request.model, 0, 0, 0)
                self._adapt(None, failure)
                self._note_failure(failure)
                if not should_retry(failure) or attempt == self.max_attempts:
                    self._stop_if_backend_gone(failure)
                    raise TransportError(
                        str(failure), attempts=attempt, status_code=failure.status_code
                    ) from failure
                delay = retry_delay(attempt, failure) * self._retry_delay_scale
                log.info("retrying %s in %.2fs after %s", request.schema_name, delay, failure)
            else:
                self.budget.settle(reserved, completion.model, completion.prompt_tokens,
                                   completion.cached_tokens, completion.completion_tokens)
                self._adapt(completion, None, request.schema_name)
                buckets.observe(completion.headers)
                buckets.refund(estimated_tokens - completion.prompt_tokens
                               - completion.completion_tokens)
                completion.attempts = attempt
            finally:
                self.limiter.release()
            if completion is not None:
                return completion
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _stop_if_backend_gone(self, failure: BackendError) -> None:
        """An endpoint out of reach or a local runtime that crashed fails every later call."""
        if failure.kind == "connection":
            self._fatal = EndpointError(
                f"cannot reach the LLM endpoint {self.backend.name}: {failure}"
            )
        elif failure.kind == "crashed":
            # Raised at once, like a wrong key: this call's own stage is not the cause.
            self._fatal = EndpointError(str(failure))
            raise self._fatal from failure

    def _note_failure(self, failure: BackendError) -> None:
        if is_fatal(failure):
            self._fatal = EndpointError(
                f"the LLM endpoint {self.backend.name} refused the request "
                f"(HTTP {failure.status_code}): check LLM_API_KEY"
            )
            raise self._fatal from failure

    def _raise_if_fatal(self) -> None:
        if self._fatal is not None:
            raise EndpointError(str(self._fatal))

    async def aclose(self) -> None:
        """Close the backend."""
        await self.backend.aclose()
