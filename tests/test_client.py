"""The OpenAI-compatible backend against a real server: what it sends, what it reads back."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable

import pytest

from conftest import TEST_API_KEY
from openai_server import FakeOpenAIServer, Reply
from persona_foundry.llm.client import (
    BackendError,
    ChatRequest,
    Completion,
    OpenAIBackend,
    sdk_http_client,
)

StartServer = Callable[..., FakeOpenAIServer]
SCHEMA = {"type": "object", "properties": {"bio": {"type": "string"}}, "required": ["bio"]}


def _complete(server: FakeOpenAIServer, request: ChatRequest) -> Completion:
    async def go() -> Completion:
        backend = OpenAIBackend(base_url=server.base_url, api_key=TEST_API_KEY, timeout_s=10)
        try:
            return await backend.complete(request)
        finally:
            await backend.aclose()

    return asyncio.run(go())


def _request(seed: int | None = 7) -> ChatRequest:
    return ChatRequest("test-model", [{"role": "system", "content": "be brief"},
                                      {"role": "user", "content": "a bio"}],
                       "core", SCHEMA, 0.4, 300, seed=seed)


def test_the_request_carries_the_messages_schema_and_sampling(start_server: StartServer) -> None:
    server = start_server(lambda body: Reply('{"bio": "hi"}'))
    _complete(server, _request())

    (seen,) = server.chat_requests()
    assert seen.authorization == f"Bearer {TEST_API_KEY}"
    assert seen.body == {
        "model": "test-model",
        "messages": [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": "a bio"}],
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "core", "schema": SCHEMA, "strict": False}},
        "temperature": 0.4, "max_tokens": 300, "seed": 7,
    }
    _complete(server, _request(seed=None))
    assert "seed" not in server.chat_requests()[-1].body


def test_the_reply_text_usage_and_headers_are_read(start_server: StartServer) -> None:
    usage = {"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129,
             "prompt_tokens_details": {"cached_tokens": 96, "audio_tokens": None,
                                       "by_modality": [{"text": 120}]}}
    server = start_server(lambda body: Reply('{"bio": "hi"}', usage=usage, finish_reason="length",
                                             headers={"X-RateLimit-Remaining-Requests": "59"}))
    completion = _complete(server, _request())

    assert (completion.text, completion.model, completion.finish_reason) == (
        '{"bio": "hi"}', "test-model", "length")
    assert (completion.prompt_tokens, completion.cached_tokens, completion.completion_tokens) == (
        120, 96, 9)
    assert completion.headers["x-ratelimit-remaining-requests"] == "59"


def test_a_sparse_reply_reads_as_empty_not_as_a_crash(start_server: StartServer) -> None:
    """Servers leave fields out: no usage, no model, a null content."""
    server = start_server(lambda body: Reply(
        raw_body=b'{"choices": [{"message": {"role": "assistant", "content": null}}]}'))
    completion = _complete(server, _request())

    assert (completion.text, completion.model, completion.prompt_tokens) == ("", "test-model", 0)


@pytest.mark.parametrize("payload", [b"<html>Bad gateway</html>", b'{"choices": "none"}'])
def test_a_reply_that_is_no_chat_completion_is_a_clear_failure(start_server: StartServer,
                                                               payload: bytes) -> None:
    server = start_server(lambda body: Reply(raw_body=payload))
    with pytest.raises(BackendError, match="not a chat completion") as failure:
        _complete(server, _request())
    assert payload.decode()[:10] in str(failure.value)


def test_an_error_status_keeps_its_code_and_headers(start_server: StartServer) -> None:
    server = start_server(lambda body: Reply(status=429, headers={"Retry-After": "3"}))
    with pytest.raises(BackendError) as failure:
        _complete(server, _request())
    assert failure.value.status_code == 429
    assert failure.value.headers["retry-after"] == "3"


def test_an_http_endpoint_loads_no_ca_bundle_but_would_still_verify_tls() -> None:
    plain = sdk_http_client("http://127.0.0.1:8000/v1")._transport.ssl_context  # type: ignore
    assert plain.cert_store_stats()["x509_ca"] == 0
    assert (plain.verify_mode, plain.check_hostname) == (ssl.CERT_REQUIRED, True)
    tls = sdk_http_client("https://api.example.com/v1")._transport.ssl_context  # type: ignore
    assert tls.verify_mode == ssl.CERT_REQUIRED and tls.cert_store_stats()["x509_ca"] > 0


def test_an_endpoint_that_refuses_the_connection_is_a_connection_failure() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def go() -> None:
        backend = OpenAIBackend(base_url=f"http://127.0.0.1:{port}/v1", api_key=None,
                                timeout_s=5)
        try:
            await backend.complete(_request())
        finally:
            await backend.aclose()

    with pytest.raises(BackendError, match="connection failed") as failure:
        asyncio.run(go())
    assert failure.value.kind == "connection"  # retried, then the run stops: endpoint gone
