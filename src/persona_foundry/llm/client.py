"""The chat-backend protocol and its OpenAI-compatible implementation over the official SDK."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx2
import openai
import orjson
from openai import AsyncOpenAI
from pydantic import BaseModel, ValidationError

from ..errors import EndpointError
from .sampling import OPENAI_SAMPLING_KEYS, Penalties

# The SDK's own retries are off: llm/retry.py is the one retry layer.
SDK_MAX_RETRIES = 0
PREFLIGHT_TIMEOUT_S = 10.0
# Servers that do not authenticate still need a non-empty bearer token from the SDK.
PLACEHOLDER_API_KEY = "no-key"
CHAT_COMPLETIONS_PATH = "/chat/completions"


@dataclass(frozen=True)
class ChatRequest:
    """One structured chat call: what is sent and what makes it the same call again."""

    model: str
    messages: list[dict[str, Any]]
    schema_name: str
    json_schema: dict[str, Any]
    temperature: float
    max_tokens: int
    seed: int | None = None
    # Extra sampling controls (llm/sampling.py); a backend sends those it accepts.
    penalties: Penalties = ()

    @functools.cached_property
    def prompt_chars(self) -> int:
        """The conversation's length as JSON, non-ASCII escaped: what the pool's estimates of a
        call's tokens start from (an escape's six characters also keep a CJK or emoji
        character, a token or more each, from being counted as a quarter of one)."""
        return len(json.dumps(self.messages))

    def fingerprint(self) -> str:
        """A stable hash of everything that determines the reply (the cache key)."""
        fields: dict[str, Any] = {
            "model": self.model,
            "messages": self.messages,
            "schema_name": self.schema_name,
            "schema": self.json_schema,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }
        if self.penalties:  # absent when unused: calls made before penalties keep their key
            fields["penalties"] = [list(pair) for pair in self.penalties]
        canonical = json.dumps(
            fields,
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def with_messages(self, messages: list[dict[str, Any]]) -> ChatRequest:
        """The same request with another conversation (used by re-asks)."""
        return dataclasses.replace(self, messages=messages)


@dataclass
class Completion:
    """A backend's reply: the text plus what it cost."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 1
    finish_reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class _PromptDetails(BaseModel):
    cached_tokens: int | None = None


class _Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: _PromptDetails | None = None


class _Message(BaseModel):
    content: str | None = None


class _Choice(BaseModel):
    message: _Message = _Message()
    finish_reason: str | None = None


class ChatReply(BaseModel):
    """The part of a chat completion this tool reads (servers add fields, or leave some out)."""

    model: str | None = None
    choices: list[_Choice] = []
    usage: _Usage | None = None


@dataclass
class BackendError(Exception):
    """A failed call as the retry rules see it, whatever the backend."""

    message: str
    status_code: int | None = None
    kind: str = "status"  # "status" | "timeout" | "connection" | "local" | "crashed"
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


class ChatBackend(Protocol):
    """Anything that can answer a ChatRequest: the OpenAI-compatible client or the local model."""

    name: str
    max_parallel: int | None
    sees_images: bool
    # Calls the pool may hand over beyond the window: the backend queues them and sends each
    # the moment a slot frees (llm/http_worker.py); 0 for a backend that sends at once.
    queued_ahead: int

    async def complete(self, request: ChatRequest) -> Completion:
        """Send one request; raise BackendError on failure."""
        ...

    def set_window(self, limit: int, paused_until: float) -> None:
        """The pool's window now, and until when (time.monotonic()) the endpoint is paused: a
        backend that queues calls (`queued_ahead`) holds its sends to it."""
        ...

    async def check(self) -> None:
        """Fail fast with EndpointError when the backend cannot serve this run at all."""
        ...

    async def aclose(self) -> None:
        """Release connections, files or memory."""
        ...


def build_response_format(request: ChatRequest) -> dict[str, Any]:
    """OpenAI structured outputs; vLLM and llama.cpp's server accept the same shape."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": request.schema_name, "schema": request.json_schema, "strict": False
        },
    }


class OpenAIBackend:
    """An OpenAI-compatible HTTP endpoint through `AsyncOpenAI` (no SDK retries)."""

    max_parallel: int | None = None
    queued_ahead = 0  # each call is sent once the pool gives it a slot

    def __init__(
        self, *, base_url: str, api_key: str | None, timeout_s: float, sees_images: bool = False,
        sampling_keys: frozenset[str] = OPENAI_SAMPLING_KEYS,
    ) -> None:
        self.name = base_url
        self.sees_images = sees_images
        # What the endpoint accepts beyond the standard fields (llama.cpp's own samplers).
        self.sampling_keys = sampling_keys
        self._client = AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or PLACEHOLDER_API_KEY,
            timeout=timeout_s,
            max_retries=SDK_MAX_RETRIES,
            http_client=sdk_http_client(base_url),
        )

    def body(self, request: ChatRequest) -> bytes:
        """The chat-completions request body: the stage's JSON schema as response_format."""
        # Plain OpenAI-shaped dicts: the SDK's TypedDict unions add nothing here.
        arguments: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "response_format": build_response_format(request),
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.seed is not None:
            arguments["seed"] = request.seed
        arguments.update((key, value) for key, value in request.penalties
                         if key in self.sampling_keys)
        # Serialized here, in one C call, and sent as the body as it is: the SDK's own JSON
        # encoding of a body is ~0.1 ms of Python a call; the HTTP worker gets these bytes.
        return orjson.dumps(arguments)

    async def post(self, body: bytes) -> RawReply:
        """Send a chat-completions body: the reply as it came, not yet read (the HTTP worker
        hands the slot on first)."""
        started = time.perf_counter()
        try:
            # The SDK's generic post, not chat.completions.create: `create` converts every
            # request through its TypedDicts and every reply into its full response model (~0.5
            # ms of CPU per call, on the one thread that also starts the next calls); ChatReply
            # reads what this tool uses, and the raw response keeps its x-ratelimit-* headers.
            raw = await self._client.post(CHAT_COMPLETIONS_PATH, content=body,
                                          cast_to=httpx2.Response)
        except openai.APIError as exc:
            raise _failure_from(exc) from exc
        return RawReply(raw, time.perf_counter() - started)

    async def complete(self, request: ChatRequest) -> Completion:
        """One chat-completions call with the stage's JSON schema as response_format."""
        return (await self.post(self.body(request))).completion(request.model)

    def set_window(self, limit: int, paused_until: float) -> None:
        """Nothing to hold: the pool's limiter is this backend's window."""

    async def check(self) -> None:
        """Ask the endpoint for its models: a wrong key or a dead host shows up here, once."""
        try:
            await self._client.models.list(timeout=PREFLIGHT_TIMEOUT_S)
        except openai.AuthenticationError as exc:
            raise EndpointError(
                f"the LLM endpoint {self.name} rejected the API key (401): check LLM_API_KEY"
            ) from exc
        except openai.PermissionDeniedError as exc:
            raise EndpointError(
                f"the LLM endpoint {self.name} refused access (403): check LLM_API_KEY"
            ) from exc
        except openai.APIConnectionError as exc:
            raise EndpointError(
                f"cannot reach the LLM endpoint {self.name}: {_root_cause(exc)}; "
                "check LLM_BASE_URL"
            ) from exc
        except openai.APIStatusError:
            return  # e.g. a server with no /models route: the calls themselves will tell.

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.close()


def sdk_http_client(base_url: str) -> httpx2.AsyncClient:
    """The SDK's aiohttp transport (its `openai[aiohttp]` extra): about half the client CPU of
    its default httpx2 one per call, and every reply waits on that one event-loop thread.

    For an http:// endpoint (a local server), a TLS context that loads no CA bundle: loading
    the system's takes ~17 ms at every start, for TLS this endpoint never uses. It still
    verifies: a redirect to https fails for want of a trusted CA, never goes on unverified."""
    if base_url.lower().startswith("http://"):
        return openai.DefaultAioHttpClient(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    return openai.DefaultAioHttpClient()


@dataclass(frozen=True)
class RawReply:
    """A chat completion's HTTP response and how long it took, before it is read."""

    response: httpx2.Response
    latency_s: float

    def completion(self, model: str) -> Completion:
        """The reply read as a Completion (`model`: the one asked for, if the reply names
        none); BackendError if it is not a chat completion."""
        raw = self.response
        try:
            reply = ChatReply.model_validate_json(raw.content)
        except ValidationError as exc:
            raise BackendError(
                f"the endpoint's reply is not a chat completion: {raw.text[:200]!r}") from exc
        choice = reply.choices[0] if reply.choices else _Choice()
        usage = reply.usage or _Usage()
        return Completion(
            text=choice.message.content or "",
            model=reply.model or model,
            prompt_tokens=usage.prompt_tokens or 0,
            completion_tokens=usage.completion_tokens or 0,
            cached_tokens=(usage.prompt_tokens_details or _PromptDetails()).cached_tokens or 0,
            latency_s=self.latency_s,
            finish_reason=choice.finish_reason,
            headers={key.lower(): value for key, value in raw.headers.items()},
        )


def _innermost(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _connection_failed(exc: BaseException) -> bool:
    """The aiohttp transport reports a refused or unresolvable connection as a connect
    timeout: the socket error underneath tells them apart."""
    cause = _innermost(exc)
    return isinstance(cause, OSError) and not isinstance(cause, TimeoutError)


def _root_cause(exc: BaseException) -> str:
    cause = _innermost(exc)
    return str(cause) or type(cause).__name__


def _failure_from(exc: openai.APIError) -> BackendError:
    if isinstance(exc, openai.APITimeoutError) and not _connection_failed(exc):
        return BackendError(f"request timed out: {exc}", kind="timeout")
    if isinstance(exc, openai.APIConnectionError):
        return BackendError(f"connection failed: {_root_cause(exc)}", kind="connection")
    if isinstance(exc, openai.APIStatusError):
        headers = {key.lower(): value for key, value in exc.response.headers.items()}
        return BackendError(
            f"HTTP {exc.status_code}: {exc.message}", status_code=exc.status_code, headers=headers
        )
    return BackendError(str(exc), kind="status")
