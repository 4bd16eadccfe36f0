"""The LLM backends as a table: which one the settings select, how it is built, and what it
means for model routing. One entry adds a backend (llm/README.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..settings import Settings
from .client import ChatBackend, OpenAIBackend
from .http_worker import AUTO_START_CALLS, HttpWorkerBackend
from .local import LocalLlamaBackend
from .model_store import resolve_model_path


@dataclass(frozen=True)
class BackendKind:
    """One kind of backend."""

    name: str
    # Whether these settings ask for this backend (the first entry that says yes is used).
    selected: Callable[[Settings], bool]
    build: Callable[[Settings], ChatBackend]
    # Stages may go to different models (LLM_MODEL, STAGE_MODELS, LLM_VISION_MODEL); False: the
    # backend's one model serves every stage, under the backend's own name.
    routes_models: bool


# HTTP_WORKER: after how many of a run's calls the HTTP worker starts (None: never).
WORKER_START_AFTER: dict[str, int | None] = {"auto": AUTO_START_CALLS, "on": 0, "off": None}


def _openai_compatible(settings: Settings) -> ChatBackend:
    api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    base_url, timeout_s = settings.llm_base_url or "", settings.request_timeout_s
    sees_images = settings.llm_multimodal or settings.llm_vision_model is not None
    start_after = WORKER_START_AFTER[settings.http_worker]
    if start_after is None:
        return OpenAIBackend(base_url=base_url, api_key=api_key, timeout_s=timeout_s,
                             sees_images=sees_images)
    return HttpWorkerBackend(base_url=base_url, api_key=api_key, timeout_s=timeout_s,
                             sees_images=sees_images, start_after_calls=start_after)


def _embedded(settings: Settings) -> ChatBackend:
    model_path = resolve_model_path(settings.local_model_path, settings.cache_dir)
    return LocalLlamaBackend(
        model_path, n_ctx=settings.local_context, n_threads=settings.local_threads,
        n_parallel=settings.local_parallel, log_dir=settings.cache_dir / "logs",
    )


BACKENDS: tuple[BackendKind, ...] = (
    BackendKind("openai-compatible", lambda settings: bool(settings.llm_base_url),
                _openai_compatible, routes_models=True),
    # Last: no endpoint configured means the embedded model (works offline, no key).
    BackendKind("embedded", lambda settings: True, _embedded, routes_models=False),
)


def backend_kind(settings: Settings) -> BackendKind:
    """The backend these settings select."""
    return next(kind for kind in BACKENDS if kind.selected(settings))


def build_backend(settings: Settings) -> ChatBackend:
    """The configured endpoint, or the embedded model when no endpoint is set."""
    return backend_kind(settings).build(settings)
