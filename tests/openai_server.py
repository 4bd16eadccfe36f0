"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests: scripted replies, latency, faults.

It speaks the chat-completions and models routes over real sockets, so the code under test runs
the official SDK end to end. A `Responder` decides each reply from the request body.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer."""

    content: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error_body: dict[str, Any] | None = None
    finish_reason: str = "stop"
    delay_s: float | None = None
    usage: dict[str, Any] | None = None  # instead of the counts made up from the text
    raw_body: bytes | None = None  # sent as it is: a reply that is no chat completion at all


@dataclass
class SeenRequest:
    """A request the server received, with when it was served."""

    body: dict[str, Any]
    authorization: str
    started: float
    finished: float = 0.0
    status: int = 0

    @property
    def schema_name(self) -> str:
        """The response_format schema name (our stage name)."""
        fmt = self.body.get("response_format") or {}
        return str((fmt.get("json_schema") or {}).get("name", ""))

    @property
    def text(self) -> str:
        """All message text of the request, for assertions."""
        return json.dumps(self.body.get("messages", []), ensure_ascii=False)


Responder = Callable[[dict[str, Any]], Reply]


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) makes bursts of new connections wait for SYN retries
    # (a second or more each): a test artefact that would look like client slowness.
    request_queue_size = 1024


class FakeOpenAIServer:
    """Start with `start()`; `base_url` ends in /v1 as the SDK expects."""

    def __init__(self, responder: Responder, *, latency_s: float = 0.0,
                 api_key: str | None = None) -> None:
        self.responder = responder
        self.latency_s = latency_s
        self.api_key = api_key
        self.requests: list[SeenRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The URL to give LLM_BASE_URL."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def chat_requests(self, schema_name: str | None = None) -> list[SeenRequest]:
        """Chat requests received, optionally of one stage."""
        with self._lock:
            seen = list(self.requests)
        return [r for r in seen if schema_name is None or r.schema_name == schema_name]

    def _authorized(self, header: str) -> bool:
        return self.api_key is None or header == f"Bearer {self.api_key}"

    def _serve_chat(self, body: dict[str, Any], authorization: str) -> tuple[int, dict[str, str],
                                                                             bytes]:
        seen = SeenRequest(body, authorization, time.monotonic())
        with self._lock:
            self.requests.append(seen)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        reply = Reply(status=500)
        try:
            if not self._authorized(authorization):
                reply = Reply(status=401, error_body={"error": {"message": "Incorrect API key",
                                                                "type": "invalid_request_error"}})
            else:
                reply = self.responder(body)
            time.sleep(self.latency_s if reply.delay_s is None else reply.delay_s)
        finally:
            with self._lock:
                self.in_flight -= 1
                seen.finished = time.monotonic()
                seen.status = reply.status
        return reply.status, reply.headers, _encode(reply, body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep test output clean

            def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if not server._authorized(self.headers.get("Authorization", "")):
                    self._send(401, {}, b'{"error": {"message": "Incorrect API key"}}')
                    return
                models = {"object": "list", "data": [{"id": "test-model", "object": "model"}]}
                self._send(200, {}, json.dumps(models).encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                status, headers, payload = server._serve_chat(
                    body, self.headers.get("Authorization", "")
                )
                self._send(status, headers, payload)

        return Handler


def _encode(reply: Reply, body: dict[str, Any]) -> bytes:
    if reply.raw_body is not None:
        return reply.raw_body
    if reply.status != 200:
        error = reply.error_body or {"error": {"message": f"injected {reply.status}"}}
        return json.dumps(error).encode()
    content = reply.content or ""
    prompt_chars = len(json.dumps(body.get("messages", [])))
    payload = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "test-model"),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": reply.finish_reason,
        }],
        "usage": reply.usage or {
            "prompt_tokens": prompt_chars // 4,
            "completion_tokens": max(1, len(content) // 4),
            "total_tokens": prompt_chars // 4 + max(1, len(content) // 4),
        },
    }
    return json.dumps(payload).encode()
