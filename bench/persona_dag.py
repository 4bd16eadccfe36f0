"""Benchmark: persona makespan against the DAG's bounds, on a local server with the original's
per-stage latencies (scaled), in one run.

    python bench/persona_dag.py [--scale 0.02]

Each stage's call takes the original design's seconds × scale (core 20, strategy 15, examples 25,
social 20, authenticity 15, visual 15, lorebook 25). Bounds are computed for the same settings:
  critical path      = 60 × scale (core → strategy → examples)
  original plan      = 1→2→3, then 4–7 together = 85 × scale
  batch lower bound  = max(critical path, total work ÷ MAX_CONCURRENT)
Prints a markdown table and writes bench/results/persona_dag.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from PIL import Image  # noqa: E402

from openai_server import FakeOpenAIServer, Reply  # noqa: E402
from persona_foundry.pipeline import PersonaRunOptions, generate_personas  # noqa: E402
from persona_foundry.settings import Settings  # noqa: E402
from persona_foundry.stages import STAGES, critical_path_s  # noqa: E402
from stage_replies import schema_name, valid_reply  # noqa: E402

ORIGINAL_PLAN_S = 20 + 15 + 25 + max(20, 15, 15, 25)  # 1→2→3, then 4–7 together
STAGE_SECONDS = {stage.name: stage.estimated_s for stage in STAGES}
TOTAL_WORK_S = sum(STAGE_SECONDS.values())


def _responder(scale: float) -> Any:
    def respond(body: dict[str, Any]) -> Reply:
        reply = valid_reply(body)
        reply.delay_s = STAGE_SECONDS[schema_name(body)] * scale
        return reply

    return respond


def _images(folder: Path, count: int) -> list[Path]:
    paths = []
    for number in range(count):
        path = folder / f"persona{number:03d}.png"
        Image.new("RGB", (64, 64), (number % 256, (number * 7) % 256, 99)).save(path)
        paths.append(path)
    return paths


def _makespan(server: FakeOpenAIServer, count: int, max_concurrent: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        images = _images(Path(folder), count)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, llm_base_url=server.base_url, llm_api_key="bench",
            llm_model="bench-model", max_concurrent=max_concurrent,
        )
        options = PersonaRunOptions(images=images, out_dir=Path(folder) / "out")
        started = time.perf_counter()
        summary = asyncio.run(generate_personas(options, settings))
        elapsed = time.perf_counter() - started
    if summary.succeeded != count:
        raise SystemExit(f"benchmark run failed: {summary.outcomes}")
    return elapsed


def run(scale: float) -> list[dict[str, Any]]:
    """Every scenario, each next to its bound."""
    critical = critical_path_s(STAGES, "core") * scale
    server = FakeOpenAIServer(_responder(scale)).start()
    rows: list[dict[str, Any]] = []
    try:
        _makespan(server, 1, 20)  # warm-up: loads the face models once, as a long run would
        one = _makespan(server, 1, 20)
        rows.append({"scenario": "1 persona vs critical path", "measured_s": one,
                     "bound_s": critical, "ratio": one / critical})
        plan = ORIGINAL_PLAN_S * scale
        rows.append({"scenario": "1 persona vs original plan (speed-up)", "measured_s": one,
                     "bound_s": plan, "ratio": plan / one})
        for count in (5, 50):
            bound = max(critical, count * TOTAL_WORK_S * scale / 20)
            measured = _makespan(server, count, 20)
            rows.append({"scenario": f"{count} personas, MAX_CONCURRENT=20", "measured_s": measured,
                         "bound_s": bound, "ratio": measured / bound})
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.02, help="seconds per original second")
    args = parser.parse_args()
    rows = run(args.scale)
    print(f"scale {args.scale}: 1 original second = {args.scale * 1000:.0f} ms\n")
    print("| scenario | measured | bound | ratio |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['scenario']} | {row['measured_s']:.2f} s | {row['bound_s']:.2f} s | "
              f"{row['ratio']:.2f}× |")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "persona_dag.json").write_text(json.dumps({"scale": args.scale, "rows": rows},
                                                         indent=2))


if __name__ == "__main__":
    main()
