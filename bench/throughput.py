"""The benchmark suite: every scenario next to a bound computed for the same settings, one run.

    python bench/throughput.py [--quick] [--skip-local]

Against bench/simserver.py (a separate process: latency model, capacity, RPM/TPM limits, 5xx):
  1. one persona: makespan vs the DAG's critical path, and vs the original plan (1→2→3, 4–7);
  2. 5 and 50 personas at MAX_CONCURRENT=20: makespan vs max(critical path, work ÷ 20);
  3. 1000 and 10 000 posts: posts/s vs a lower bound for the calls made (the fastest month
     plan, which post calls wait for, + max(busy time ÷ capacity, whole rounds of calls)),
     the median of three runs;
  4. a rate-limited server (600 RPM, 60k TPM) found from its headers: share of the limit used,
     429s, nothing lost;
  5. client overhead: CPU time per request with 1000 requests in flight (profiled);
  6. the embedded model: tokens/s through our backend vs llama.cpp direct (bench/local_backend).
Writes bench/results/throughput.json and prints the markdown table for the README.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from PIL import Image  # noqa: E402

from persona_foundry import calendar, tweets  # noqa: E402
from persona_foundry.llm.client import ChatRequest, OpenAIBackend  # noqa: E402
from persona_foundry.llm.pool import LLMPool  # noqa: E402
from persona_foundry.llm.session import LLMSession  # noqa: E402
from persona_foundry.pipeline import PersonaRunOptions, generate_personas  # noqa: E402
from persona_foundry.settings import Settings  # noqa: E402
from persona_foundry.stages import STAGES, critical_path_s  # noqa: E402
from persona_foundry.tweets import TweetOptions, generate_tweets  # noqa: E402

ORIGINAL_S = {stage.name: stage.estimated_s for stage in STAGES}
ORIGINAL_PLAN_S = 20 + 15 + 25 + max(20, 15, 15, 25) + 2  # 1→2→3, then 4–7, then merge
WORK_PER_PERSONA_S = sum(ORIGINAL_S.values())
SIM_CAPACITY = 20
MAX_POSTS_PER_PERSONA = 600  # a month at 20 posts a day has about 620 slots
POSTS_REPEATS = 3
Row = dict[str, Any]


class Sim:
    """A simserver process."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "simserver.py"), json.dumps(config)],
            stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    def stats(self) -> dict[str, float]:
        with urllib.request.urlopen(f"{self.url}/stats") as response:  # loopback
            return dict(json.loads(response.read()))

    def __enter__(self) -> Sim:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.kill()
        self.process.wait()


def settings(url: str, **values: Any) -> Settings:
    return Settings(_env_file=None, llm_base_url=url, llm_api_key="bench",  # type: ignore[call-arg]
                    llm_model="bench-model", **values)


def images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        path = folder / f"p{number:03d}.png"
        Image.new("RGB", (48, 48), (number % 256, number * 7 % 256, 99)).save(path)
        paths.append(path)
    return paths


def personas(url: str, folder: Path, count: int, **values: Any) -> tuple[float, list[Path]]:
    options = PersonaRunOptions(images=images(folder, count), out_dir=folder / "out")
    started = time.perf_counter()
    summary = asyncio.run(generate_personas(options, settings(url, **values)))
    elapsed = time.perf_counter() - started
    if summary.succeeded != count:
        raise SystemExit(f"persona run failed: {summary.outcomes[:2]}")
    return elapsed, [o.card_path for o in summary.outcomes if o.card_path]


def scenario_personas(scale: float, counts: tuple[int, ...]) -> list[Row]:
    """1 and 2: makespans against the DAG's bounds."""
    stage_seconds = {name: seconds * scale for name, seconds in ORIGINAL_S.items()}
    critical = critical_path_s(STAGES, "core") * scale
    rows = []
    with Sim({"capacity": 1000, "stage_seconds": stage_seconds}) as sim, \
            tempfile.TemporaryDirectory() as folder:
        personas(sim.url, Path(folder) / "warm", 1)  # imports, face models: paid once
        for count in counts:
            elapsed, _ = personas(sim.url, Path(folder) / f"n{count}", count)
            bound = max(critical, count * WORK_PER_PERSONA_S * scale / 20)
            rows.append({"scenario": f"{count} persona(s), MAX_CONCURRENT=20, vs "
                         "max(critical path, work ÷ 20)", "measured": elapsed,
                         "bound": bound, "ratio": elapsed / bound, "unit": "s"})
            if count == 1:
                rows.append({"scenario": "1 persona: speed-up over the original plan",
                             "measured": elapsed, "bound": ORIGINAL_PLAN_S * scale,
                             "ratio": ORIGINAL_PLAN_S * scale / elapsed, "unit": "s"})
    return rows


def posts_bound_s(before: dict[str, Any], after: dict[str, Any]) -> float:
    """A lower bound on the makespan of the calls this run made: no post call starts before a
    month plan is back (the fastest plan), and then some server slot serves at least
    ⌈calls ÷ capacity⌉ post calls (at least the shortest ones) — never less than the post calls'
    busy time ÷ capacity."""
    plan_s = min(after["by_schema"][calendar.STAGE_NAME]["service_s"])
    earlier = len(before["by_schema"].get(tweets.STAGE_NAME, {"service_s": []})["service_s"])
    posts_s = sorted(after["by_schema"][tweets.STAGE_NAME]["service_s"][earlier:])
    per_slot = -(-len(posts_s) // SIM_CAPACITY)
    return plan_s + max(sum(posts_s) / SIM_CAPACITY, sum(posts_s[:per_slot]))


def _posts_run(sim: Sim, cards: list[Path], out_dir: Path, per_persona: int) -> Row:
    """One posts run into a fresh folder (no calendar, no ledger): its figures and bound."""
    before = sim.stats()
    options = TweetOptions(cards=cards, out_dir=out_dir, month="2026-12", count=per_persona)

    async def run() -> Any:
        async with LLMSession.open(settings(sim.url, max_concurrent=SIM_CAPACITY),
                                   options.out_dir) as session:
            return await generate_tweets(options, session)

    started = time.perf_counter()
    summary = asyncio.run(run())
    elapsed = time.perf_counter() - started
    after = sim.stats()
    return {"made": summary.made, "elapsed_s": elapsed, "bound_s": posts_bound_s(before, after),
            "calls": after["served"] - before["served"],
            "prompt_tokens": after["prompt_tokens"] - before["prompt_tokens"]}


def scenario_posts(counts: tuple[int, ...], repeats: int = POSTS_REPEATS) -> list[Row]:
    """3: posts/s against the server's capacity bound; the median of `repeats` runs (a run of
    a few seconds moves by ±1 % from one to the next), every run's ratio listed."""
    rows = []
    config = {"capacity": SIM_CAPACITY, "ttft_s": 0.05, "tokens_per_s": 800,
              "posts_per_day": 20}
    with Sim(config) as sim, tempfile.TemporaryDirectory() as folder:
        for count in counts:
            group = Path(folder) / f"p{count}"
            persona_count = -(-count // MAX_POSTS_PER_PERSONA)
            _, cards = personas(sim.url, group, persona_count)
            runs = [_posts_run(sim, cards, group / f"out{index}", count // persona_count)
                    for index in range(repeats)]
            for run in runs:
                run["ratio"] = run["bound_s"] / run["elapsed_s"]
            median = sorted(runs, key=lambda run: run["ratio"])[len(runs) // 2]
            made = median["made"]
            rows.append({
                "scenario": f"{made} posts, up to 8 per call, vs capacity bound "
                            f"({median['calls'] / made:.3f} calls and "
                            f"{median['prompt_tokens'] / made:.0f} input tokens per post; "
                            f"median of {repeats} runs: "
                            + ", ".join(f"{run['ratio']:.3f}" for run in runs) + ")",
                "measured": made / median["elapsed_s"], "bound": made / median["bound_s"],
                "ratio": median["ratio"], "unit": "posts/s", "runs": runs})
    return rows


def _request(chars: int) -> ChatRequest:
    text = ("lorem ipsum " * (chars // 12 + 1))[:chars]
    return ChatRequest("bench-model", [{"role": "user", "content": text}], "social", {}, 0.0, 200)


def scenario_rate_limited(calls: int) -> list[Row]:
    """4: share of a 600 RPM / 60k TPM limit used, learned from headers."""
    tpm = 60_000
    with Sim({"capacity": 100, "ttft_s": 0.05, "tokens_per_s": 2000, "rpm": 600,
              "tpm": tpm}) as sim:
        pool = LLMPool(OpenAIBackend(base_url=sim.url, api_key="k", timeout_s=30),
                       max_concurrent=20, max_attempts=10)

        async def run() -> None:
            try:
                await pool.complete(_request(1600))  # headers teach the limits
                await asyncio.gather(*[pool.complete(_request(1600)) for _ in range(calls)])
            finally:
                await pool.aclose()

        started = time.perf_counter()
        asyncio.run(run())
        elapsed = time.perf_counter() - started
        stats = sim.stats()
    tokens = stats["prompt_tokens"] + stats["completion_tokens"]
    # The first 10 s allowance is a burst any client gets; the rate is what follows it.
    steady = (tokens - tpm * 10 / 60) / elapsed * 60
    return [{"scenario": f"rate-limited server (600 RPM, 60k TPM): {int(stats['served'])} calls,"
             f" {int(stats['rate_limited'])} × 429 "
             f"({stats['rate_limited'] / (stats['served'] + stats['rate_limited']):.1%}),"
             " none lost", "measured": steady, "bound": tpm, "ratio": steady / tpm,
             "unit": "tokens/min"}]


def scenario_overhead(calls: int) -> tuple[list[Row], str]:
    """5: client CPU per request with 1000 in flight, and where it goes."""
    with Sim({"capacity": 1000, "stage_seconds": {"social": 2.0}}) as sim:
        pool = LLMPool(OpenAIBackend(base_url=sim.url, api_key="k", timeout_s=60),
                       max_concurrent=1000, max_attempts=1)

        async def run() -> None:
            try:
                await asyncio.gather(*[pool.complete(_request(400)) for _ in range(calls)])
            finally:
                await pool.aclose()

        profiler = cProfile.Profile()
        cpu = time.process_time()
        profiler.enable()
        asyncio.run(run())
        profiler.disable()
        per_call_ms = (time.process_time() - cpu) / calls * 1000
    report = io.StringIO()
    pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(8)
    return [{"scenario": f"client CPU per request, {calls} requests, 1000 in flight "
             "(profiled)", "measured": per_call_ms, "bound": None, "ratio": None,
             "unit": "ms"}], report.getvalue()


def scenario_local() -> list[Row]:
    """6: the embedded model's generated tokens/s, ours vs direct."""
    subprocess.run([sys.executable, str(ROOT / "bench" / "local_backend.py"), "--skip-persona"],
                   check=True, capture_output=True)
    data = json.loads((ROOT / "bench" / "results" / "local_backend.json").read_text())
    return [{"scenario": f"embedded model ({data['model']}) tokens/s, ours vs llama.cpp direct",
             "measured": data["ours_tokens_per_s"], "bound": data["direct_tokens_per_s"],
             "ratio": data["ratio"], "unit": "tokens/s"},
            {"scenario": f"embedded model, {data['parallel']} calls at once, aggregate tokens/s "
                         "vs one stream of llama.cpp direct",
             "measured": data["ours_parallel_tokens_per_s"], "bound": data["direct_tokens_per_s"],
             "ratio": data["parallel_ratio"], "unit": "tokens/s"}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--posts-only", action="store_true", help="scenario 3 alone")
    args = parser.parse_args()
    if args.posts_only:
        for row in scenario_posts((1000, 10_000)):
            print(f"{row['scenario']}: {row['measured']:.1f} vs {row['bound']:.1f} posts/s "
                  f"({row['ratio']:.2f})")
        return
    rows = scenario_personas(0.02 if args.quick else 0.1, (1, 5) if args.quick else (1, 5, 50))
    rows += scenario_posts((200,), repeats=1) if args.quick else scenario_posts((1000, 10_000))
    rows += scenario_rate_limited(20 if args.quick else 80)
    overhead, profile = scenario_overhead(200 if args.quick else 2000)
    rows += overhead
    if not args.skip_local:
        rows += scenario_local()
    print("| scenario | measured | bound | ratio |\n|---|---|---|---|")
    for row in rows:
        bound = f"{row['bound']:.2f} {row['unit']}" if row["bound"] is not None else "—"
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "—"
        print(f"| {row['scenario']} | {row['measured']:.2f} {row['unit']} | {bound} | {ratio} |")
    print("\nclient profile (top by own time):\n" + "\n".join(profile.splitlines()[:22]))
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "throughput.json").write_text(json.dumps({"rows": rows, "profile": profile},
                                                        indent=2))


if __name__ == "__main__":
    main()
