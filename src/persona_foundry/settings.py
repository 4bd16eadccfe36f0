"""Settings: the only reader of the environment and `.env`; CLI flags override both."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .costs import DEFAULT_PRICES, ModelPrice

DEFAULT_MAX_CONCURRENT = 20
# Parallel decoding slots of the embedded model: 4 gave the best aggregate speed on 2 cores
# (README, "Embedded model"); more only split the same cores thinner.
DEFAULT_LOCAL_PARALLEL = 4


def secret_from_env(name: str) -> str | None:
    """A platform secret from the environment variable accounts.yaml names (publish only)."""
    return os.environ.get(name) or None


def _default_cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "persona-foundry"


class Settings(BaseSettings):
    """Run configuration from (lowest to highest priority) defaults, env, `.env`, init kwargs."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint; none means the embedded model."
    )
    llm_api_key: SecretStr | None = Field(default=None, description="API key; never logged.")
    llm_model: str = Field(default="gpt-4o-mini", description="Model for every stage.")
    llm_vision_model: str | None = Field(
        default=None, description="A model that can see images; stage 1 sends it the image."
    )
    llm_multimodal: bool = Field(
        default=False, description="The main model accepts images (send the image to stage 1)."
    )
    stage_models: dict[str, str] = Field(
        default_factory=dict, description='Per-stage model overrides, e.g. {"core": "gpt-4o"}.'
    )
    max_concurrent: int = Field(default=DEFAULT_MAX_CONCURRENT, ge=1, le=1000)
    rpm: float | None = Field(default=None, gt=0, description="Requests per minute allowed.")
    tpm: float | None = Field(default=None, gt=0, description="Tokens per minute allowed.")
    request_timeout_s: float = Field(default=120.0, gt=0)
    http_worker: Literal["auto", "on", "off"] = Field(
        default="auto", description="Send calls from a child process that owns the window "
        "(llm/http_worker.py): auto starts it once a run has made 200 calls.")
    max_attempts: int = Field(default=5, ge=1, le=20, description="Transport attempts per call.")
    max_reasks: int = Field(default=2, ge=0, le=5, description="Re-asks after invalid replies.")
    temperature: float = Field(default=0.8, ge=0, le=2)
    seed: int | None = Field(default=None, description="Sampling seed, for reproducible runs.")

    local_model_path: Path | None = Field(
        default=None, description="A GGUF file for the embedded backend (default: Qwen2.5 1.5B)."
    )
    local_threads: int | None = Field(default=None, ge=1)
    # 4096 tokens a slot on average (a posts call of 8 slots may take ~2k of prompt and 2k
    # of reply); about 0.45 GB of KV cache for the default model (computed: 28 layers x 2 KV
    # heads x 128 dims x K and V x 2 bytes a token).
    local_context: int = Field(default=16384, ge=1024,
                               description="Tokens of KV cache, shared by every slot.")
    local_parallel: int = Field(default=DEFAULT_LOCAL_PARALLEL, ge=1, le=16,
                                description="Calls the embedded model decodes at once.")
    cache_dir: Path = Field(default_factory=_default_cache_dir)

    lorebook_entries: int = Field(default=6, ge=1, le=20)

    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="Extra or overriding prices, $ per million tokens."
    )
    budget_usd: float | None = Field(default=None, gt=0, description="Stop new calls past it.")

    def price_table(self) -> dict[str, ModelPrice]:
        """The default prices with the configured ones on top."""
        return {**DEFAULT_PRICES, **self.prices}

    def model_for(self, stage: str) -> str:
        """The model name a stage's calls use."""
        return self.stage_models.get(stage, self.llm_model)
