"""The HTTP worker: a child process that sends a run's calls and owns its window.

Against a fast endpoint (a local vLLM or llama.cpp server answering 20 calls in 50 ms), the
run's one event-loop thread is the bottleneck: it reads every reply, validates it, logs it and
builds the next prompts, and a slot freed by a reply is only handed on once the loop gets to it.
At 400 calls a second the server saw 18 of its 20 slots in service. Here the calls go through
the official SDK in a child process of their own, on another core. The pipeline hands the worker
up to `queued_ahead` calls more than the window. The worker sends one the moment a reply frees a
slot, whatever the pipeline's loop is doing. The window itself still belongs to the pool (its
adaptive limit and 429 pauses, llm/pool.py); the worker only enforces it.

It starts once a run has made `start_after_calls` calls: below that its start (~0.6 s of another
core's CPU, importing the SDK) costs more than it saves. Until it is ready, calls go in-process.
A worker that dies fails its calls as retryable, and the retries go in-process.

The wire (one owner, this module): two 4-byte big-endian lengths, an orjson object, a payload.
  to the worker:   config (first), call {id, model} + the request body as it is sent,
                   cancel {id}, window {limit, paused_until}
  from it:         ready, done {id, completion}, failed {id, error}
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import signal
import socket
import struct
import sys
import time
from collections import deque
from typing import Any

import orjson

from .client import BackendError, ChatRequest, Completion, OpenAIBackend
from .retry import RATE_LIMITED
from .sampling import OPENAI_SAMPLING_KEYS

log = logging.getLogger(__name__)
# The worker's queue, as a share of the window: enough to cover the pipeline's loop falling
# behind a round of replies (a few ms at 400 calls a second).
QUEUE_SHARE = 0.2
MIN_QUEUED = 2
AUTO_START_CALLS = 200
STOP_TIMEOUT_S = 5.0
READY_TIMEOUT_S = 30.0
_LENGTHS = struct.Struct(">II")  # the message's length, then its payload's


def _frame(message: dict[str, Any], payload: bytes = b"") -> bytes:
    data = orjson.dumps(message)
    return _LENGTHS.pack(len(data), len(payload)) + data + payload


async def _read(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes] | None:
    """The next message and its payload, or None at the end of the stream."""
    try:
        head, size = _LENGTHS.unpack(await reader.readexactly(_LENGTHS.size))
        message: dict[str, Any] = orjson.loads(await reader.readexactly(head))
        payload = await reader.readexactly(size) if size else b""
    except asyncio.IncompleteReadError:
        return None
    return message, payload


def _completion_fields(completion: Completion) -> dict[str, Any]:
    return {field.name: getattr(completion, field.name)
            for field in dataclasses.fields(completion)}


def _error_fields(failure: BackendError) -> dict[str, Any]:
    return {"message": failure.message, "status_code": failure.status_code,
            "kind": failure.kind, "headers": failure.headers}


def queue_for(window: int) -> int:
    """Calls the worker holds beyond a window of `window`."""
    return max(MIN_QUEUED, math.ceil(window * QUEUE_SHARE))


class HttpWorkerBackend:
    """An OpenAI-compatible endpoint whose calls go through the HTTP worker once it is up."""

    max_parallel: int | None = None

    def __init__(
        self, *, base_url: str, api_key: str | None, timeout_s: float, sees_images: bool = False,
        sampling_keys: frozenset[str] = OPENAI_SAMPLING_KEYS,
        start_after_calls: int = AUTO_START_CALLS,
    ) -> None:
        self._config = {"base_url": base_url, "api_key": api_key, "timeout_s": timeout_s,
                        "sampling_keys": sorted(sampling_keys)}
        self._inline = OpenAIBackend(base_url=base_url, api_key=api_key, timeout_s=timeout_s,
                                     sees_images=sees_images, sampling_keys=sampling_keys)
        self.name = self._inline.name
        self.sees_images = sees_images
        self.queued_ahead = 0  # until the worker is ready
        self._start_after = start_after_calls
        self._calls = 0
        self._window = 1
        self._paused_until = 0.0
        self._inline_in_flight = 0
        self._sent_window: tuple[int, float] | None = None
        self._worker_holding = False
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._ready = False
        self._came_up = asyncio.Event()  # set when the worker is ready, or gone before it was
        self.through_worker = 0  # calls the worker has sent
        self._launched = False  # once: a worker that died is not started again
        self._pending: dict[int, asyncio.Future[Completion]] = {}
        self._ids = 0

    async def complete(self, request: ChatRequest) -> Completion:
        """One call: through the worker when it is ready, in-process until then."""
        self._calls += 1
        if self._ready:
            self.through_worker += 1
            return await self._through_worker(request)
        if not self._launched and self._calls > self._start_after:
            self._launched = True
            await self._start()
        self._inline_in_flight += 1
        try:
            return await self._inline.complete(request)
        finally:
            self._inline_in_flight -= 1
            self._tell_window()

    def set_window(self, limit: int, paused_until: float) -> None:
        """The pool's window now, and until when (time.monotonic()) a 429 paused the endpoint."""
        self._window, self._paused_until = limit, paused_until
        if self._ready:
            self.queued_ahead = queue_for(limit)
        self._tell_window()

    @property
    def worker_pid(self) -> int | None:
        """The worker's process id while it runs."""
        return self._process.pid if self._process is not None else None

    async def check(self) -> None:
        """The endpoint's preflight, in-process. With HTTP_WORKER=on (no calls to wait for),
        the worker is started here, and every call goes through it once it is ready."""
        await self._inline.check()
        if self._start_after > 0 or self._launched:
            return
        self._launched = True
        await self._start()
        try:
            await asyncio.wait_for(self._came_up.wait(), READY_TIMEOUT_S)
        except TimeoutError:
            log.warning("the HTTP worker did not come up in %.0f s: calls go in-process "
                        "until it does", READY_TIMEOUT_S)

    async def aclose(self) -> None:
        """Close the connections; closing the socket asks the worker to exit."""
        if self._process is not None:
            log.info("the HTTP worker sent %d of this run's calls", self.through_worker)
        try:
            await self._inline.aclose()
        finally:
            await self._stop_worker()

    async def _stop_worker(self) -> None:
        self._ready = False
        if self._writer is not None:
            self._writer.close()
        process, self._process = self._process, None
        if process is not None:
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):  # it ended just now after all
                    process.kill()
                await process.wait()
        if self._reader_task is not None:
            await self._reader_task

    async def _through_worker(self, request: ChatRequest) -> Completion:
        assert self._writer is not None
        self._ids += 1
        call_id = self._ids
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        self._writer.write(_frame({"op": "call", "id": call_id, "model": request.model},
                                  self._inline.body(request)))
        try:
            return await future
        except BackendError as failure:
            # The worker holds its queue after a 429; the pool's answer to it (the set_window
            # its _adapt makes right after this raise, with the pause) lets it go on. Flagged
            # here, not when the reply is read: another call's set_window in between would let
            # it go before the pause is known.
            self._worker_holding |= failure.status_code == RATE_LIMITED
            raise
        except asyncio.CancelledError:
            if self._pending.pop(call_id, None) is not None and self._writer is not None:
                self._writer.write(_frame({"op": "cancel", "id": call_id}))
            raise

    def _tell_window(self) -> None:
        """Send the worker its share of the window: what in-process calls still in flight
        leave of it. After a 429 the worker holds its queue until it hears again."""
        if not self._ready or self._writer is None:
            return
        window = (max(0, self._window - self._inline_in_flight), self._paused_until)
        if window != self._sent_window or self._worker_holding:
            self._sent_window, self._worker_holding = window, False
            # time.monotonic() is one clock for every process of the machine.
            self._writer.write(_frame({"op": "window", "limit": window[0],
                                       "paused_until": window[1]}))

    async def _start(self) -> None:
        if sys.platform == "win32" or not sys.executable:  # no pass_fds; no interpreter to run
            self._came_up.set()
            return
        parent, child = socket.socketpair()
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", __name__, str(child.fileno()), pass_fds=(child.fileno(),),
                start_new_session=True,  # a Ctrl-C reaches the run, which then ends the worker
            )
        except Exception as exc:  # any reason at all: the calls go on in-process
            parent.close()
            self._came_up.set()
            log.warning("cannot start the HTTP worker (%s): calls stay in-process", exc)
            return
        finally:
            child.close()
        reader, self._writer = await asyncio.open_connection(sock=parent)
        self._writer.write(_frame({"op": "config", **self._config}))
        self._reader_task = asyncio.create_task(self._read_replies(reader))

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        try:
            while (received := await _read(reader)) is not None:
                self._take(received[0])
        except Exception:  # a garbled stream: end the worker rather than hang its calls
            log.exception("the HTTP worker's replies cannot be read")
        finally:
            self._worker_ended()

    def _take(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "ready":
            self._ready = True
            self._came_up.set()
            self.queued_ahead = queue_for(self._window)
            self._tell_window()
            return
        future = self._pending.pop(message["id"], None)
        if future is None or future.done():
            # Cancelled here after the worker had finished it. A 429 nobody will hear of holds
            # the worker's queue all the same: let it go on under the window it has.
            if op == "failed" and message["error"].get("status_code") == RATE_LIMITED:
                self._worker_holding = True
                self._tell_window()
            return
        if op == "done":
            future.set_result(Completion(**message["completion"]))
        else:
            future.set_exception(BackendError(**message["error"]))

    def _worker_ended(self) -> None:
        """The worker is gone: its calls fail as retryable and go in-process from now on."""
        was_serving = self._ready or self._pending
        never_ready = not self._came_up.is_set()
        self._ready, self.queued_ahead = False, 0
        self._came_up.set()  # nobody waits for a worker that is gone
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(BackendError(
                    "the HTTP worker process ended with this call unanswered", kind="worker"))
        if self._process is None:
            return  # closed by aclose
        if never_ready:
            log.warning("the HTTP worker process ended before it was ready (python -m %s): "
                        "calls stay in-process", __name__)
        elif was_serving:
            log.warning("the HTTP worker process ended: calls go in-process from now on")


class _Worker:
    """The child's side: a window of calls in flight and a queue behind it."""

    def __init__(self, backend: OpenAIBackend, writer: asyncio.StreamWriter) -> None:
        self.backend = backend
        self.writer = writer
        self.limit = 0  # nothing is sent before the pipeline says how many may be in flight
        self.held_until = 0.0
        self.holding = False  # after a 429, until the pipeline sends the window again
        self.queued: deque[tuple[int, str, bytes]] = deque()  # id, model, body
        self.running: dict[int, asyncio.Task[None]] = {}
        self._resume: asyncio.TimerHandle | None = None

    def handle(self, message: dict[str, Any], payload: bytes) -> None:
        op = message["op"]
        if op == "call":
            self.queued.append((message["id"], message["model"], payload))
        elif op == "cancel":
            self._cancel(message["id"])
        elif op == "window":
            self.limit, self.holding = int(message["limit"]), False
            self.held_until = float(message["paused_until"])
        self._send_what_fits()

    def _cancel(self, call_id: int) -> None:
        task = self.running.get(call_id)
        if task is not None:
            task.cancel()
            return
        self.queued = deque(item for item in self.queued if item[0] != call_id)

    def _send_what_fits(self) -> None:
        wait = self.held_until - time.monotonic()
        if wait > 0:
            if self._resume is None:
                self._resume = asyncio.get_running_loop().call_later(wait, self._resumed)
            return
        while self.queued and len(self.running) < self.limit and not self.holding:
            call_id, model, body = self.queued.popleft()
            self.running[call_id] = asyncio.create_task(self._call(call_id, model, body))

    def _fail(self, call_id: int, failure: BackendError) -> None:
        self.writer.write(_frame({"op": "failed", "id": call_id, "error": _error_fields(failure)}))

    def _resumed(self) -> None:
        self._resume = None
        self._send_what_fits()

    async def _call(self, call_id: int, model: str, body: bytes) -> None:
        try:
            raw = await self.backend.post(body)
        except BackendError as failure:
            # A 429 holds the queue before the slot is given on (llm/pool.py then pauses).
            self.holding |= failure.status_code == RATE_LIMITED
            self._fail(call_id, failure)
            return
        except Exception as exc:  # a bug here must not leave the pipeline's call waiting
            self._fail(call_id, BackendError(f"the HTTP worker failed: {exc!r}", kind="worker"))
            return
        finally:
            # The slot is free once the reply is in: the next call goes out before this one
            # is read and reported.
            del self.running[call_id]
            self._send_what_fits()
        try:
            completion = raw.completion(model)
        except BackendError as failure:
            self._fail(call_id, failure)
            return
        self.writer.write(_frame({"op": "done", "id": call_id,
                                  "completion": _completion_fields(completion)}))


async def _serve(descriptor: int) -> None:
    reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=descriptor))
    received = await _read(reader)
    if received is None:
        return
    config, _ = received
    backend = OpenAIBackend(base_url=config["base_url"], api_key=config["api_key"],
                            timeout_s=config["timeout_s"],
                            sampling_keys=frozenset(config["sampling_keys"]))
    worker = _Worker(backend, writer)
    writer.write(_frame({"op": "ready"}))
    try:
        while (received := await _read(reader)) is not None:
            worker.handle(*received)
    finally:
        for task in list(worker.running.values()):
            task.cancel()
        await asyncio.gather(*worker.running.values(), return_exceptions=True)
        await backend.aclose()
        writer.close()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run ends the worker by closing the socket
    asyncio.run(_serve(int(sys.argv[1])))
    # Its connections are closed and it holds no files: the interpreter's teardown of the SDK's
    # modules (~0.1 s) would only keep the run's end waiting.
    sys.stderr.flush()
    os._exit(0)
