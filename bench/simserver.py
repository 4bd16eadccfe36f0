"""A simulated OpenAI-compatible server for benchmarks (asyncio, its own process).

    python bench/simserver.py '{"capacity": 20, "ttft_s": 0.05, "tokens_per_s": 400}'

Prints its base URL, then serves until SIGTERM. Latency model, counted from when the request
is read: time to first token plus output tokens ÷ tokens per second, or a fixed per-stage time
(`stage_seconds`); `capacity` requests are served at once and the rest queue; `rpm`/`tpm` are
enforced with buckets holding 10 s of allowance, answering 429 with Retry-After and sending
x-ratelimit-* headers; `fault_rate` of calls fail with 500; `schema_seed` makes it answer like a
schema-following backend (each request gets a random valid instance of the schema it sent:
tests/schema_server.py; `self_check: false` leaves out the generator's self-check of each
instance) instead of the scripted stage replies. GET /stats returns counters (served, 429s,
5xx, busy seconds; also per response schema), how late its loop ran (`lag`) and a timeline
of every served call (schema, arrived, started, finished, in seconds of time.monotonic() since
`clock_origin`), to see where the server sat idle.
"""

from __future__ import annotations

import asyncio
import json
import random
import selectors
import signal
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from openai_server import Reply
from persona_foundry.llm.ratelimit import TokenBucket
from schema_server import schema_responder
from stage_replies import content_reply

CHARS_PER_TOKEN = 4
LAG_PROBE_S = 0.005


class SimServer:
    """The simulated endpoint's state."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.capacity = asyncio.Semaphore(int(config.get("capacity", 20)))
        self.requests = TokenBucket(config["rpm"]) if config.get("rpm") else None
        self.tokens = TokenBucket(config["tpm"]) if config.get("tpm") else None
        self.stats: dict[str, Any] = {"served": 0, "rate_limited": 0, "faults": 0,
                                      "busy_s": 0.0, "prompt_tokens": 0,
                                      "completion_tokens": 0, "by_schema": {},
                                      "timeline": [], "clock_origin": time.monotonic()}
        self.started = self.stats["clock_origin"]
        self.random = random.Random(config.get("seed", 1))
        self.posts_per_day = config.get("posts_per_day")
        seed = config.get("schema_seed")
        # The generator's self-check (jsonschema over each instance, and over each schema seen
        # for the first time) was most of the ~1.4 ms of Python a call this process spent, on
        # the same cores as the client it measures. Without it the replies are the same ones.
        check = bool(config.get("self_check", True))
        self.schema = schema_responder(int(seed), check=check) if seed is not None else None
        self.lag_s: list[float] = []  # how late a 5 ms timer fires: the loop's own delay

    def lag_report(self) -> dict[str, float]:
        """The loop's delay so far (ms): how much the simulator itself adds to its latency."""
        lags = sorted(self.lag_s) or [0.0]
        return {"mean_ms": 1000 * sum(lags) / len(lags),
                "p50_ms": 1000 * lags[len(lags) // 2], "p99_ms": 1000 * lags[int(len(lags) * 0.99)]}

    def _limit_headers(self) -> dict[str, str]:
        headers = {}
        for kind, bucket in (("requests", self.requests), ("tokens", self.tokens)):
            if bucket is not None:
                headers[f"x-ratelimit-limit-{kind}"] = str(int(bucket.per_minute))
                headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, int(bucket.level)))
                headers[f"x-ratelimit-reset-{kind}"] = f"{bucket.wait_s(bucket.capacity):.1f}s"
        return headers

    def _admit(self, prompt_tokens: int) -> float:
        """0 if the call is within the limits (and takes its share), else seconds to wait."""
        wait = max(self.requests.wait_s(1) if self.requests else 0.0,
                   self.tokens.wait_s(prompt_tokens) if self.tokens else 0.0)
        if wait > 0:
            return wait
        if self.requests:
            self.requests.take(1)
        if self.tokens:
            self.tokens.take(prompt_tokens)
        return 0.0

    def _reply(self, body: dict[str, Any]) -> Reply:
        reply = content_reply(body) if self.schema is None else self.schema(body)
        name = body["response_format"]["json_schema"]["name"]
        if name == "strategy" and self.posts_per_day and reply.content:
            strategy = json.loads(reply.content)
            strategy["posts_per_day"] = self.posts_per_day
            reply.content = json.dumps(strategy)
        return reply

    async def chat(self, body: dict[str, Any], read_at: float
                   ) -> tuple[int, dict[str, str], dict[str, Any]]:
        """One chat completion under the latency, capacity, limit and fault models.

        `read_at` (time.monotonic()) is when the request was read: a call's latency runs from
        then, so the simulator's own work on it (parsing, drawing a schema instance) is spent
        inside the latency, as a real server's is, not added to it."""
        prompt_tokens = len(json.dumps(body.get("messages", []))) // CHARS_PER_TOKEN
        wait = self._admit(prompt_tokens)
        if wait > 0:
            self.stats["rate_limited"] += 1
            return 429, {"retry-after": f"{wait:.3f}", **self._limit_headers()}, {
                "error": {"message": "rate limited", "type": "rate_limit_exceeded"}}
        if self.random.random() < self.config.get("fault_rate", 0.0):
            self.stats["faults"] += 1
            return 500, {}, {"error": {"message": "injected fault"}}
        # Every request that has come in is read (its latency starts) before the CPU work of
        # drawing any reply: the draw runs inside the latency, not in front of a later read.
        await asyncio.sleep(0)
        reply = self._reply(body)
        if reply.status != 200:  # a schema the schema server cannot honour: the client's bug
            self.stats["refused"] = self.stats.get("refused", 0) + 1
            return reply.status, {}, reply.error_body or {}
        content = reply.content or ""
        completion_tokens = max(1, len(content) // CHARS_PER_TOKEN)
        if self.tokens:
            self.tokens.take(completion_tokens)
        stage_seconds = self.config.get("stage_seconds", {})
        name = body["response_format"]["json_schema"]["name"]
        service = stage_seconds.get(name) or (
            self.config.get("ttft_s", 0.05) + completion_tokens / self.config.get(
                "tokens_per_s", 1000))
        arrived = read_at - self.started
        queued = self.capacity.locked()
        async with self.capacity:
            began = time.monotonic() - self.started
            # Queued behind `capacity`, the call's service starts when a slot frees; otherwise
            # at its arrival, with the time already spent on it counted.
            await asyncio.sleep(max(0.0, (began if queued else arrived) + service
                                    - (time.monotonic() - self.started)))
        self.stats["timeline"].append((name, arrived, began, time.monotonic() - self.started))
        self.stats["served"] += 1
        self.stats["busy_s"] += service
        kind = self.stats["by_schema"].setdefault(name, {"busy_s": 0.0, "service_s": []})
        kind["busy_s"] += service
        kind["service_s"].append(service)
        self.stats["prompt_tokens"] += prompt_tokens
        self.stats["completion_tokens"] += completion_tokens
        return 200, self._limit_headers(), {
            "id": "sim", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "sim"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": reply.finish_reason}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }


async def _handle(server: SimServer, reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            # The head in one read, not a line at a time: this process shares the two cores
            # with the client it measures, so its own CPU a call is kept small.
            request_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {key.strip().lower(): value.strip()
                       for key, _, value in (line.partition(":") for line in lines if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            read_at = time.monotonic()
            if method == "POST":
                status, extra, payload = await server.chat(orjson.loads(body), read_at)
            elif path.endswith("/stats"):
                status, extra, payload = 200, {}, {**server.stats, "lag": server.lag_report()}
            else:
                status, extra, payload = 200, {}, {"object": "list", "data": [{"id": "sim"}]}
            data = orjson.dumps(payload)
            head = [f"HTTP/1.1 {status} X", "Content-Type: application/json",
                    f"Content-Length: {len(data)}", *(f"{k}: {v}" for k, v in extra.items())]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def _measure_lag(server: SimServer) -> None:
    while True:
        before = time.monotonic()
        await asyncio.sleep(LAG_PROBE_S)
        server.lag_s.append(time.monotonic() - before - LAG_PROBE_S)


async def main(config: dict[str, Any]) -> None:
    """Serve on 127.0.0.1 until SIGTERM or SIGINT."""
    server = SimServer(config)
    listener = await asyncio.start_server(lambda r, w: _handle(server, r, w), "127.0.0.1", 0,
                                          backlog=4096)
    port = listener.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}/v1", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    probe = asyncio.create_task(_measure_lag(server))
    async with listener:
        await stop.wait()
    probe.cancel()


if __name__ == "__main__":
    # select(2) takes its timeout in microseconds; epoll, asyncio's default, in whole
    # milliseconds, rounded up: every 50 ms sleep ran ~0.5 ms late from that alone.
    with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(
            selectors.SelectSelector())) as runner:
        runner.run(main(json.loads(sys.argv[1] if len(sys.argv) > 1 else "{}")))
