"""Benchmark: 1000 posts against a local server with a fixed per-call latency, batched vs not.

    python bench/tweets.py [--posts 1000] [--latency 0.2] [--concurrency 20]

Twenty personas × 50 posts each. The same run is made twice in one process, with 8 slots per
call (ours) and with 1 slot per call (the original design), each into a fresh folder. Prints
posts/s, calls per post (month-plan calls included) and input tokens per post for both, next
to the server-capacity bound for the calls each run needed: latency × ⌈calls ÷ concurrency⌉.
Writes bench/results/tweets.json.
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

from openai_server import FakeOpenAIServer  # noqa: E402
from persona_foundry.llm.session import LLMSession  # noqa: E402
from persona_foundry.pipeline import PersonaRunOptions, generate_personas  # noqa: E402
from persona_foundry.settings import Settings  # noqa: E402
from persona_foundry.tweets import TweetOptions, generate_tweets  # noqa: E402
from stage_replies import content_reply  # noqa: E402

PERSONAS = 20
MONTH = "2026-12"


def _settings(server: FakeOpenAIServer, concurrency: int) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, llm_base_url=server.base_url, llm_api_key="bench",
        llm_model="bench-model", max_concurrent=concurrency,
    )


def _cards(server: FakeOpenAIServer, folder: Path, concurrency: int) -> list[Path]:
    images = []
    for number in range(PERSONAS):
        path = folder / f"p{number:02d}.png"
        Image.new("RGB", (64, 64), (number * 11 % 256, 40, 90)).save(path)
        images.append(path)
    options = PersonaRunOptions(images=images, out_dir=folder / "cards")
    summary = asyncio.run(generate_personas(options, _settings(server, concurrency)))
    return [outcome.card_path for outcome in summary.outcomes if outcome.card_path]


def _run(server: FakeOpenAIServer, cards: list[Path], out: Path, per_call: int,
         posts: int, concurrency: int) -> dict[str, Any]:
    options = TweetOptions(cards=cards, out_dir=out, month=MONTH, count=posts // len(cards),
                           slots_per_call=per_call)
    before = len(server.chat_requests())

    async def go() -> Any:
        async with LLMSession.open(_settings(server, concurrency), out) as session:
            return await generate_tweets(options, session)

    started = time.perf_counter()
    summary = asyncio.run(go())
    elapsed = time.perf_counter() - started
    calls = len(server.chat_requests()) - before
    prompt = sum(p.prompt_tokens for p in summary.personas)
    # The server's capacity bound for the calls this run needed (calendars included).
    bound_s = server.latency_s * -(-calls // concurrency)
    return {"slots_per_call": per_call, "posts": summary.made, "seconds": elapsed,
            "posts_per_s": summary.made / elapsed, "calls_per_post": calls / summary.made,
            "input_tokens_per_post": prompt / summary.made,
            "bound_posts_per_s": summary.made / bound_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per call")
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    server = FakeOpenAIServer(content_reply).start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            cards = _cards(server, Path(folder), args.concurrency)
            server.latency_s = args.latency
            for per_call in (8, 1):
                out = Path(folder) / f"run{per_call}"
                rows.append(_run(server, cards, out, per_call, args.posts, args.concurrency))
    finally:
        server.stop()
    print(f"{args.posts} posts, {PERSONAS} personas, {args.latency * 1000:.0f} ms per call, "
          f"{args.concurrency} calls in flight\n")
    print("| slots per call | posts/s | bound | share of bound | calls/post | input tokens/post |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        share = row["posts_per_s"] / row["bound_posts_per_s"]
        print(f"| {row['slots_per_call']} | {row['posts_per_s']:.1f} | "
              f"{row['bound_posts_per_s']:.0f} | {share:.0%} | {row['calls_per_post']:.3f} | "
              f"{row['input_tokens_per_post']:.0f} |")
    print(f"\nspeed-up of batching: {rows[0]['posts_per_s'] / rows[1]['posts_per_s']:.1f}×")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "tweets.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
