"""The embedded backend: llama.cpp's C++ server in a child process, spoken to over HTTP.

The runtime is `xllamacpp` (MIT), chosen over `llama-cpp-python` 0.3.36 (README, "Embedded
model"):
- a prebuilt portable wheel: no compile at install (llama-cpp-python builds llama.cpp from source,
  5–7 minutes on 2 cores per the project's measurements in shared/SYSTEM.md);
- no AMX code at all: its Linux x86-64 CPU wheel is built without `-march=native`, while a
  native build on an Intel AMX CPU segfaults in the first decode (llama.cpp#20824);
  `tests/test_local_model.py` checks the runtime's system info says so;
- llama.cpp's own server: continuous batching over `n_parallel` slots, so the DAG's parallel
  stages and the posts' calls really decode together (measured with bench/local_backend.py on
  the default model, 2 cores: 17.9 tokens/s aggregate over 4 calls at once vs 12.6 for the
  runtime alone, one call at a time), and `json_schema` constrained natively (LLGuidance)
  rather than by a Python grammar.

A child process, because a native crash (segfault, abort, the OOM killer) inside llama.cpp would
otherwise end the whole run without a word; here it ends the child, the run stops with an error
that names the signal and the child's log, and every call finished before it is in the ledger,
so a rerun resumes. Over HTTP through `OpenAIBackend`, because the child's server is OpenAI-
compatible: the embedded model takes the same code path, SDK included, as any endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import SecretStr

from ..errors import ModelSetupError
from ..settings import DEFAULT_LOCAL_PARALLEL
from .client import BackendError, ChatRequest, Completion, OpenAIBackend
from .local_protocol import LocalServerConfig, parse_address_line
from .sampling import LLAMA_CPP_SAMPLING_KEYS

# Loading a GGUF is a memory map plus a few seconds of set-up; a child silent for this long
# is stuck.
SERVER_START_TIMEOUT_S = 300.0
# A local call is as slow as the CPU: a persona-sized reply on a busy slot can take minutes.
LOCAL_REQUEST_TIMEOUT_S = 1800.0
STOP_TIMEOUT_S = 10.0
LOG_TAIL_CHARS = 1500
# After a lost connection, how long to wait for the child's exit status before assuming it lives.
CRASH_EXIT_WAIT_S = 15.0


def _usable_cpus() -> int:
    """CPUs this process may run on (a container's cpuset, not the host's count)."""
    return len(os.sched_getaffinity(0)) or 1


# Prompt tokens a call may take, from its characters: an upper estimate (JSON and short words
# tokenize denser than prose's ~4 characters a token), plus the chat template's own tokens.
PROMPT_CHARS_PER_TOKEN_BOUND = 3
TEMPLATE_TOKENS = 64


class ContextBudget:
    """The child's one KV cache (`kv_unified`): n_ctx tokens shared by every decoding slot.

    A call is admitted only while its worst case (prompt plus max_tokens) fits beside the calls
    already decoding. Unbounded, four slots each writing up to their max_tokens filled the cache
    and llama.cpp failed every one of them ("Context size has been exceeded", HTTP 500).
    """

    def __init__(self, tokens: int) -> None:
        self.total = self.free = tokens
        self._changed = asyncio.Condition()

    @staticmethod
    def need(request: ChatRequest) -> int:
        """The most tokens this call can hold in the cache."""
        return (request.prompt_chars // PROMPT_CHARS_PER_TOKEN_BOUND + TEMPLATE_TOKENS
                + request.max_tokens)

    @contextlib.asynccontextmanager
    async def hold(self, tokens: int) -> AsyncIterator[None]:
        """Wait until `tokens` are free and keep them for the block (a call larger than the
        whole cache waits until it runs alone)."""
        tokens = min(tokens, self.total)
        async with self._changed:
            await self._changed.wait_for(lambda: self.free >= tokens)
            self.free -= tokens
        try:
            yield
        finally:
            async with self._changed:
                self.free += tokens
                self._changed.notify_all()


class LocalLlamaBackend:
    """A GGUF model served by llama.cpp in a child process on this machine's CPU."""

    sees_images = False
    queued_ahead = 0

    def __init__(self, model_path: Path, *, n_ctx: int, n_threads: int | None = None,
                 n_parallel: int = DEFAULT_LOCAL_PARALLEL, log_dir: Path | None = None) -> None:
        self.model_path = model_path
        self.name = f"local:{model_path.name}"
        self.max_parallel: int | None = n_parallel
        self._config = LocalServerConfig(
            model_path=str(model_path), n_ctx=n_ctx, n_parallel=n_parallel,
            n_threads=n_threads or _usable_cpus(),
            api_key=SecretStr(secrets.token_urlsafe(24)),
        )
        self._log_dir = log_dir
        self._log_path: Path | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._client: OpenAIBackend | None = None
        self._starting = asyncio.Lock()
        self._context = ContextBudget(n_ctx)

    async def complete(self, request: ChatRequest) -> Completion:
        """One call to the child's server; a dead child becomes a non-retryable 'crashed'."""
        client = await self._started()
        try:
            async with self._context.hold(ContextBudget.need(request)):
                completion = await client.complete(request)
        except BackendError as failure:
            crash = await self._crash_report(failure)
            if crash is not None:
                raise BackendError(crash, kind="crashed") from failure
            raise
        completion.model = self.name
        return completion

    def set_window(self, limit: int, paused_until: float) -> None:
        """No window to hold: the embedded model's slots are `max_parallel`."""

    async def check(self) -> None:
        """Start the child and load the model now, so a broken file fails before any persona."""
        try:
            await self._started()
        except BackendError as exc:
            raise ModelSetupError(str(exc)) from exc

    async def aclose(self) -> None:
        """Close the connection, then end the child (closing its stdin asks it to exit)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
        if process.returncode == 0 and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)

    async def _started(self) -> OpenAIBackend:
        async with self._starting:
            if self._client is None:
                self._client = await self._start()
            return self._client

    async def _start(self) -> OpenAIBackend:
        # 1. Check the model file before spending a process on it.
        if not self.model_path.is_file():
            raise BackendError(f"cannot load {self.model_path}: no such file", kind="local")
        # 2. Start the child; whatever goes wrong before it serves, it does not outlive this.
        process = self._process = await self._spawn()
        try:
            base_url = await self._address(process)
        except BaseException:
            if process.returncode is None:
                process.kill()
                await process.wait()
            self._process = None
            raise
        return OpenAIBackend(base_url=base_url,
                             api_key=self._config.api_key.get_secret_value(),
                             timeout_s=LOCAL_REQUEST_TIMEOUT_S,
                             sampling_keys=LLAMA_CPP_SAMPLING_KEYS)

    async def _spawn(self) -> asyncio.subprocess.Process:
        """The child process, its stderr in a fresh log file, in a session of its own so that
        a Ctrl-C of the run reaches the run (which then ends the child), not the child."""
        log_dir = self._log_dir or Path(tempfile.gettempdir())
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            descriptor, log_name = tempfile.mkstemp(prefix="local-model-", suffix=".log",
                                                    dir=log_dir)
            self._log_path = Path(log_name)
            with os.fdopen(descriptor, "wb") as log:
                return await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "persona_foundry.llm.local_server",
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
                    start_new_session=True,
                )
        except OSError as exc:
            raise BackendError(f"cannot start the embedded model (log folder {log_dir}): "
                               f"{exc}", kind="local") from exc

    async def _address(self, process: asyncio.subprocess.Process) -> str:
        """Send the config, then read the child's address line (or why it exited)."""
        if process.stdin is None or process.stdout is None:  # pragma: no cover - PIPE given
            raise BackendError("the embedded model's process has no pipes", kind="local")
        try:
            process.stdin.write(self._config.model_dump_json().encode() + b"\n")
            await process.stdin.drain()
            line = await asyncio.wait_for(process.stdout.readline(), SERVER_START_TIMEOUT_S)
        except TimeoutError:
            raise BackendError(f"cannot load {self.model_path}: no answer within "
                               f"{SERVER_START_TIMEOUT_S:.0f} s", kind="local") from None
        except OSError:  # the child died before reading its config (a broken pipe)
            line = b""
        if not line:
            await process.wait()
            raise BackendError(f"cannot load {self.model_path}: {self._exit_text()}",
                               kind="local")
        try:
            return parse_address_line(line)
        except ValueError as exc:
            raise BackendError(f"cannot start the embedded model: {exc}", kind="local") from exc

    async def _crash_report(self, failure: BackendError) -> str | None:
        """What ended the child, if a failed call was its death; None while it still runs.

        A lost connection waits up to CRASH_EXIT_WAIT_S for the exit status (a crashing process
        may spend seconds writing a core dump); any other failure looks at it only.
        """
        process = self._process
        if process is None:
            return None
        if failure.kind == "connection" and process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(process.wait()), CRASH_EXIT_WAIT_S)
        if process.returncode is None:
            return None
        return (f"the embedded model ({self.model_path.name}) crashed: {self._exit_text()}. "
                "Every call finished before it is kept in the ledger: a rerun resumes there")

    def _exit_text(self) -> str:
        process = self._process
        code = process.returncode if process is not None else None
        if code is None:
            how = "still running"
        elif code < 0:
            how = f"killed by {signal.Signals(-code).name}"
        else:
            how = f"exit status {code}"
        return f"{how}; its log ({self._log_path}) ends with: {self._log_tail()!r}"

    def _log_tail(self) -> str:
        if self._log_path is None:
            return ""
        try:
            text = self._log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return text[-LOG_TAIL_CHARS:].strip()
