"""Benchmark: personas by the thousand into one output folder, against a schema-following server.

    python bench/personas_scale.py [--sizes 10,1000,10000] [--latency 0.05] [--window 20]

One run, one folder: each size is a batch of that many new images generated into the same
folder as the sizes before it (a size over RUN_LIMIT is split into runs of RUN_LIMIT: 10,000 is
two runs of 5,000). The server is bench/simserver.py in its own process answering like a
schema-following backend (a random valid instance of the schema each request sent, without the
generator's self-check) after a fixed latency; MAX_CONCURRENT is the window. Each run is a child
process of its own, so its peak RSS is its own. Printed, with bounds measured in this same run:
  completion         personas with a complete card / personas asked for (target 100 %)
  duplicates         duplicate names and handles among all the folder's cards (target 0)
  stage-1 prompt     prompt tokens of the first persona's stage 1 (empty folder) vs the last's
                     (target within ±5 %)
  peak RSS           of each size's largest run vs the smallest size's (target ≤ 1.5×)
  makespan           of each run (after a warm-up loading the face model, Faker's locales and
                     the post checks' language model)
                     vs max(critical path, calls × latency ÷ window) (target ≤ 1.1×), with the
                     client's CPU (its event loop's, per call; its HTTP worker's), the server
                     process's CPU and the mean calls in service (server busy seconds ÷
                     makespan)
  diversity          the folder's diversity report (its own targets), its time and peak RSS
and, first, the machine's speed on a fixed piece of pure Python (the makespans follow it).
Writes bench/results/personas_scale.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from PIL import Image  # noqa: E402

from persona_foundry import names  # noqa: E402
from persona_foundry.diversity import diversity_report, folder_facts  # noqa: E402
from persona_foundry.pipeline import PersonaRunOptions, generate_personas  # noqa: E402
from persona_foundry.settings import Settings  # noqa: E402
from persona_foundry.source_image import extract_visual_facts, load_source_image  # noqa: E402
from persona_foundry.stages import STAGES  # noqa: E402
from persona_foundry.textchecks import warm_up_checks  # noqa: E402

RUN_LIMIT = 5000
RSS_BOUND = 1.5
MAKESPAN_BOUND = 1.1
PROMPT_BOUND = 0.05
CPU_REFERENCE_N = 10_000_000


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _dag_depth() -> int:
    """Calls on the longest dependency chain (core → strategy → examples: 3)."""
    by_name = {stage.name: stage for stage in STAGES}

    def depth(name: str) -> int:
        return 1 + max((depth(dep) for dep in by_name[name].depends_on), default=0)

    return max(depth(name) for name in by_name)


def _images(folder: Path, start: int, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(start, start + count):
        path = folder / f"p{number:05d}.png"
        if not path.exists():
            colour = (number % 251, (number // 251) % 251, (number * 7) % 253)
            Image.new("RGB", (64, 64), colour).save(path)
        paths.append(path)
    return paths


def child(job: dict[str, Any]) -> None:
    """One run of `generate_personas` in this process; prints its figures as JSON."""
    images = _images(Path(job["images"]), job["start"], job["count"])
    # Warm-up, as a long run has it: the face model, Faker's locales and the post checks'
    # language model load once per process.
    extract_visual_facts(load_source_image(images[0]))
    names.warm_up()
    warm_up_checks()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, llm_base_url=job["base_url"], llm_api_key="bench",
        llm_model="bench-model", max_concurrent=job["window"], request_timeout_s=120,
    )
    options = PersonaRunOptions(images=images, out_dir=Path(job["out"]), seed=job["seed"])
    load = os.getloadavg()[0]
    cpu_before, loop_before = _cpu_s(), time.thread_time()
    worker_before = _cpu_s(resource.RUSAGE_CHILDREN)
    summary = asyncio.run(generate_personas(options, settings))
    loop_cpu_s = time.thread_time() - loop_before  # the event loop's thread alone
    # The HTTP worker (llm/http_worker.py) is a child process, ended and reaped by the run.
    worker_cpu_s = _cpu_s(resource.RUSAGE_CHILDREN) - worker_before
    errors = sorted({o.error or "" for o in summary.outcomes if o.status != "ok"})[:3]
    print(json.dumps({"ok": summary.succeeded, "asked": job["count"], "wall_s": summary.wall_s,
                      "cpu_s": _cpu_s() - cpu_before, "loop_cpu_s": loop_cpu_s,
                      "worker_cpu_s": worker_cpu_s,
                      "load_average": load,
                      "peak_rss_mb": _peak_rss_mb(), "errors": errors}))


def child_diversity(folder: str) -> None:
    """The folder's diversity report in this process; prints it with its time and peak RSS."""
    started = time.perf_counter()
    report = diversity_report(folder_facts(Path(folder)))
    deviation = max(abs(share - target) for shares in report.distributions.values()
                    for share, target in shares.values())
    print(json.dumps({
        "personas": report.personas, "distinct_names": report.distinct_names,
        "duplicate_names": len(report.duplicate_names),
        "duplicate_handles": len(report.duplicate_handles),
        "near_duplicate_share": report.near_duplicate_share,
        "max_share_deviation": deviation, "meets_targets": report.meets_targets,
        "seconds": time.perf_counter() - started, "peak_rss_mb": _peak_rss_mb(),
    }))


def _in_child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {args[:1]} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process and its live children (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return ((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            + sum(_process_cpu_s(int(child)) for child in children))


class _Server:
    """bench/simserver.py in its own process."""

    def __init__(self, latency_s: float) -> None:
        # Without the instance generator's self-check: the same replies for ~1 ms a call less
        # of the simulator's CPU, which shares this machine's two cores with the client.
        config = {"capacity": 100_000, "ttft_s": latency_s, "tokens_per_s": 1e12,
                  "schema_seed": 1, "self_check": False}
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "simserver.py"), json.dumps(config)],
            stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()

    def counters(self) -> tuple[int, float, float]:
        """(calls answered, seconds of service given, CPU seconds the server process used)."""
        with urllib.request.urlopen(self.base_url + "/stats") as reply:  # the local simserver
            stats = json.loads(reply.read())
        served = int(stats["served"]) + int(stats.get("refused", 0))
        return served, float(stats["busy_s"]), _process_cpu_s(self.process.pid)

    def loop_lag(self) -> dict[str, float]:
        """How late the simulator's own loop ran timers so far (mean, p50, p99 in ms)."""
        with urllib.request.urlopen(self.base_url + "/stats") as reply:  # the local simserver
            lag: dict[str, float] = json.loads(reply.read())["lag"]
        return lag

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def _core_prompt_tokens(out: Path) -> list[int]:
    with sqlite3.connect(out / "ledger.db") as db:
        rows = db.execute("SELECT prompt_tokens FROM calls WHERE stage = 'core' ORDER BY id")
        return [int(row[0]) for row in rows]


def _runs(size: int) -> list[int]:
    return [min(RUN_LIMIT, size - start) for start in range(0, size, RUN_LIMIT)]


def _cpu_reference_s() -> float:
    """Seconds this machine takes for a fixed piece of pure Python, best of three: the shared
    cores' speed drifts by 10 % and more from hour to hour, and every makespan with it."""
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        sum(number * number for number in range(CPU_REFERENCE_N))
        timings.append(time.perf_counter() - started)
    return min(timings)


def run(sizes: list[int], latency_s: float, window: int, seed: int) -> dict[str, Any]:
    """Every size into one folder; each run's figures and its bound."""
    reference_s = _cpu_reference_s()
    server = _Server(latency_s)
    critical_s = _dag_depth() * latency_s
    scenarios: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        out, images, start = Path(tmp) / "out", Path(tmp) / "images", 0
        try:
            for size in sizes:
                runs = []
                for count in _runs(size):
                    before = server.counters()
                    job = {"images": str(images), "start": start, "count": count,
                           "out": str(out), "base_url": server.base_url, "window": window,
                           "seed": seed}
                    result = _in_child(["--child", json.dumps(job)])
                    after = server.counters()
                    calls = after[0] - before[0]
                    result["calls"] = calls
                    # Mean calls in service at the server over the run: how full the window was.
                    result["mean_in_flight"] = (after[1] - before[1]) / result["wall_s"]
                    result["server_cpu_s"] = after[2] - before[2]
                    result["bound_s"] = max(critical_s, calls * latency_s / window)
                    runs.append(result)
                    start += count
                scenarios.append({"size": size, "runs": runs})
            server_lag = server.loop_lag()
            diversity = _in_child(["--diversity", str(out / "personas")])
            tokens = _core_prompt_tokens(out)
        finally:
            server.stop()
    return {"latency_s": latency_s, "window": window, "critical_path_s": critical_s,
            "cpu_reference_s": reference_s,
            "scenarios": scenarios, "diversity": diversity, "server_lag_ms": server_lag,
            "core_prompt_tokens": {"first": tokens[0], "last": tokens[-1], "min": min(tokens),
                                   "max": max(tokens), "calls": len(tokens)}}


def _rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    base_rss = max(r["peak_rss_mb"] for r in results["scenarios"][0]["runs"])
    base_size = results["scenarios"][0]["size"]
    for scenario in results["scenarios"]:
        runs, size = scenario["runs"], scenario["size"]
        ok = sum(r["ok"] for r in runs)
        rows.append((f"{size} personas ({len(runs)} run(s)): complete", f"{ok}",
                     f"{size}", f"{ok / size:.1%}"))
        rss = max(r["peak_rss_mb"] for r in runs)
        rows.append((f"{size} personas: peak RSS vs {base_size} (≤ {RSS_BOUND}×)",
                     f"{rss:.0f} MB", f"{base_rss:.0f} MB", f"{rss / base_rss:.2f}×"))
        for number, result in enumerate(runs, start=1):
            rows.append((f"{size} personas run {number}: makespan vs max(critical path, "
                         f"{result['calls']} calls × latency ÷ window) (≤ {MAKESPAN_BOUND}×; "
                         f"client CPU {result['cpu_s']:.1f} s (event loop "
                         f"{result['loop_cpu_s']:.1f} s, "
                         f"{1000 * result['loop_cpu_s'] / result['calls']:.2f} ms a call; "
                         f"HTTP worker {result['worker_cpu_s']:.1f} s), server CPU "
                         f"{result['server_cpu_s']:.1f} s, mean in flight "
                         f"{result['mean_in_flight']:.1f}, load average "
                         f"{result['load_average']:.1f} on {os.cpu_count()} cores)",
                         f"{result['wall_s']:.2f} s", f"{result['bound_s']:.2f} s",
                         f"{result['wall_s'] / result['bound_s']:.2f}×"))
    lag = results["server_lag_ms"]
    rows.append(("the simulator's own delay: how late its loop ran a 5 ms timer (mean, p99)",
                 f"{lag['mean_ms']:.2f} ms", f"{lag['p99_ms']:.1f} ms", "—"))
    tokens = results["core_prompt_tokens"]
    rows.append((f"stage-1 prompt tokens, first vs last persona (±{PROMPT_BOUND:.0%}; "
                 f"min {tokens['min']}, max {tokens['max']} over {tokens['calls']} calls)",
                 str(tokens["last"]), str(tokens["first"]),
                 f"{tokens['last'] / tokens['first']:.3f}"))
    d = results["diversity"]
    rows.append(("folder: duplicate names / handles (target 0 / 0)",
                 f"{d['duplicate_names']} / {d['duplicate_handles']}", "0 / 0",
                 f"{d['distinct_names']} distinct of {d['personas']}"))
    rows.append(("folder: near-duplicate bio pairs (target < 2 %), largest attribute share "
                 "deviation", f"{d['near_duplicate_share']:.3%}",
                 f"{d['max_share_deviation']:.3f}", "meets targets" if d["meets_targets"]
                 else "MISSES targets"))
    rows.append((f"diversity report over {d['personas']} cards: time, peak RSS",
                 f"{d['seconds']:.1f} s", f"{d['peak_rss_mb']:.0f} MB", "—"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,1000,10000", help="comma-separated batch sizes")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per call")
    parser.add_argument("--window", type=int, default=20, help="MAX_CONCURRENT")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--diversity", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    if args.diversity:
        child_diversity(args.diversity)
        return
    sizes = [int(size) for size in args.sizes.split(",")]
    results = run(sizes, args.latency, args.window, args.seed)
    print(f"latency {args.latency * 1000:.0f} ms, window {args.window}, sizes {sizes}, "
          f"one folder; this machine's speed: {CPU_REFERENCE_N:,} squares summed in "
          f"{results['cpu_reference_s']:.3f} s (best of 3)\n")
    print("| scenario | measured | bound | ratio |")
    print("|---|---|---|---|")
    for row in _rows(results):
        print("| " + " | ".join(row) + " |")
    folder = ROOT / "bench" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "personas_scale.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
