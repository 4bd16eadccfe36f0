"""Benchmark: the quality report on a fixed batch, every measure printed with its target.

    python bench/quality.py [--personas 2] [--posts 1000] [--skip-local | --skip-mechanics]
                            [--card CARD] [--keep DIR] [--no-judge]

1. Mechanics, on the schema-driven test server (tests/schema_server.py, seed 0): personas
   from the example image, `--posts` posts each (over as many months as that takes), then the
   report with the judge. The text is random English prose, so the figures test the pipeline's
   guarantees (no near duplicates kept, habits enforced), not a model's writing; the judge's
   verdicts there are random.
2. Real text, on the embedded default model (skip with --skip-local): one persona (or
   `--card`), 24 posts (the issue-20 target: ≥ 90 % accepted at the first or second attempt,
   no near-duplicate pair, no post copying an example, ≤ 10 minutes on 2 cores), then the
   report with the judge on the same model (`--no-judge`: the report without it, minutes
   sooner on 2 cores).
Writes bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from openai_server import FakeOpenAIServer  # noqa: E402
from persona_foundry.calendar import parse_month  # noqa: E402
from persona_foundry.llm.session import LLMSession  # noqa: E402
from persona_foundry.pipeline import PersonaRunOptions, generate_personas  # noqa: E402
from persona_foundry.quality import QualityReport, quality_report  # noqa: E402
from persona_foundry.quality.metrics import words  # noqa: E402
from persona_foundry.quality.style import FIRST_PERSON  # noqa: E402
from persona_foundry.settings import Settings  # noqa: E402
from persona_foundry.textchecks import opening, third_person_problem  # noqa: E402
from persona_foundry.tweets import TweetOptions, TweetRunSummary, generate_tweets  # noqa: E402
from schema_server import schema_responder  # noqa: E402

IMAGE = ROOT / "examples" / "astronaut.png"
FIRST_MONTH = "2026-12"
LOCAL_POSTS = 24
MAX_LOCAL_MINUTES = 10
MIN_EARLY_ACCEPTED = 0.9


def _months(first: str) -> Any:
    year, month = parse_month(first)
    while True:
        yield f"{year}-{month:02d}"
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


async def _personas(settings: Settings, out: Path, count: int) -> list[Path]:
    images = []
    for number in range(count):
        image = out / "images" / f"persona{number}.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(IMAGE, image)
        image.write_bytes(image.read_bytes() + bytes([number]))  # a different file each
        images.append(image)
    summary = await generate_personas(PersonaRunOptions(images=images, out_dir=out), settings)
    return [outcome.card_path for outcome in summary.outcomes if outcome.card_path]


async def _posts(settings: Settings, cards: list[Path], out: Path,
                 posts: int) -> list[TweetRunSummary]:
    """`posts` posts per card, month after month until each has them (or a month gives none)."""
    runs, left = [], {card: posts for card in cards}
    for month in _months(FIRST_MONTH):
        wanted = [card for card, count in left.items() if count > 0]
        if not wanted:
            return runs
        async with LLMSession.open(settings, out) as session:
            count = max(left[card] for card in wanted)
            run = await generate_tweets(TweetOptions(cards=wanted, out_dir=out, month=month,
                                                     count=count), session)
        runs.append(run)
        if not run.made:
            return runs
        for result in run.personas:
            left[result.card] -= result.made
    return runs


async def _report(settings: Settings, out: Path, judge: bool = True) -> QualityReport:
    if not judge:
        return await quality_report(out, None)
    async with LLMSession.open(settings, out) as session:
        return await quality_report(out, session)


def _targets(report: QualityReport) -> list[dict[str, Any]]:
    return [{"measure": t.name, "value": t.value, "target": t.target, "met": t.met}
            for t in report.targets()]


def _print(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}\n| measure | value | target | met |\n|---|---|---|---|")
    for row in rows:
        met = "stated" if row["met"] is None else ("yes" if row["met"] else "**no**")
        print(f"| {row['measure']} | {row['value']} | {row['target']} | {met} |")


def _diversity(report: QualityReport) -> dict[str, float]:
    pooled, months = report.pooled, max(len(report.months), 1)
    return {"posts": pooled.posts, "distinct_2": pooled.distinct_2,
            "self_bleu_within": sum(m.diversity.self_bleu for m in report.months) / months,
            "long_ngram_share_within": sum(m.diversity.long_ngram_share
                                           for m in report.months) / months,
            "bleu_across_personas": report.across_personas.self_bleu,
            "compression_ratio": pooled.compression_ratio, **_voice(report)}


def _voice(report: QualityReport) -> dict[str, float]:
    """Shares of posts in the first person (English pronouns), naming their persona at the
    start, and opening (first 3 words) like another post of their month."""
    posts = [(month.persona, post.text, month.month) for month in report.months
             for post in month.posts]
    if not posts:
        return {}
    openings = [(month, opening(text)) for _, text, month in posts]
    return {
        "first_person_share": sum(bool(FIRST_PERSON & set(words(text)))
                                  for _, text, _ in posts) / len(posts),
        "third_person_start_share": sum(third_person_problem(text, name) is not None
                                        for name, text, _ in posts) / len(posts),
        "shared_opening_share": sum(openings.count(key) > 1 for key in openings) / len(posts),
    }


def mechanics(personas: int, posts: int) -> dict[str, Any]:
    """Part 1: the schema-driven server."""
    server = FakeOpenAIServer(schema_responder(0)).start()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, llm_base_url=server.base_url, llm_api_key="bench",
        llm_model="bench-model", max_concurrent=20)
    try:
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder)
            started = time.perf_counter()
            cards = asyncio.run(_personas(settings, out, personas))
            runs = asyncio.run(_posts(settings, cards, out, posts))
            report = asyncio.run(_report(settings, out))
            seconds = time.perf_counter() - started
    finally:
        server.stop()
    made = sum(run.made for run in runs)
    rows = _targets(report)
    _print(f"Mechanics: {len(cards)} personas, {made} posts, schema-driven server, "
           f"{seconds:.1f} s", rows)
    return {"personas": len(cards), "posts": made, "seconds": seconds, "targets": rows,
            "diversity": _diversity(report)}


def _early_share(summary: TweetRunSummary) -> float:
    """Posts accepted at the first or second attempt, of those asked for."""
    early = 0
    for result in summary.personas:
        if result.tweet_file is None:
            continue
        tweets = json.loads(result.tweet_file.read_text(encoding="utf-8"))["tweets"]
        early += sum(tweet["generation"]["attempt"] <= 2 for tweet in tweets)
    return early / LOCAL_POSTS


def real_text(card: Path | None, keep: Path | None, judge: bool = True) -> dict[str, Any]:
    """Part 2: the embedded default model (no LLM_BASE_URL), in `keep` or a temporary folder."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    with tempfile.TemporaryDirectory() as folder:
        out = keep or Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        if card is None:
            cards = asyncio.run(_personas(settings, out, 1))
        else:
            (out / "personas").mkdir(exist_ok=True)
            cards = [Path(shutil.copy(card, out / "personas" / card.name))]
        started = time.perf_counter()

        async def write() -> TweetRunSummary:
            async with LLMSession.open(settings, out) as session:
                return await generate_tweets(TweetOptions(cards=cards, out_dir=out,
                                                          month=FIRST_MONTH,
                                                          count=LOCAL_POSTS), session)

        summary = asyncio.run(write())
        post_minutes = (time.perf_counter() - started) / 60
        early = _early_share(summary)  # read while the folder still exists
        report = asyncio.run(_report(settings, out, judge))
    result = summary.personas[0]
    print(f"\nposts: made {result.made}, regenerated {result.regenerated}, failed "
          f"{result.failed}, duplicates caught {result.duplicates}, "
          f"{result.prompt_tokens}+{result.completion_tokens} tokens")
    rows = [{"measure": "posts accepted at the 1st or 2nd attempt", "value": f"{early:.0%}",
             "target": f"≥ {MIN_EARLY_ACCEPTED:.0%}", "met": early >= MIN_EARLY_ACCEPTED},
            {"measure": f"minutes for {LOCAL_POSTS} posts", "value": f"{post_minutes:.1f}",
             "target": f"≤ {MAX_LOCAL_MINUTES}", "met": post_minutes <= MAX_LOCAL_MINUTES},
            *_targets(report)]
    _print(f"Real text: embedded model, {summary.made} of {LOCAL_POSTS} posts", rows)
    print("\n" + ", ".join(f"{key} {value:.2f}" for key, value in _diversity(report).items()))
    return {"posts": summary.made, "minutes": post_minutes, "targets": rows,
            "diversity": _diversity(report),
            "judge_calls": report.judge.calls if report.judge else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--personas", type=int, default=2)
    parser.add_argument("--posts", type=int, default=1000, help="posts per persona")
    parser.add_argument("--skip-local", action="store_true", help="no embedded-model part")
    parser.add_argument("--card", type=Path, help="an existing card for the embedded part")
    parser.add_argument("--keep", type=Path, help="write the embedded part's folder here")
    parser.add_argument("--skip-mechanics", action="store_true", help="only the embedded part")
    parser.add_argument("--no-judge", action="store_true",
                        help="the embedded part's report without the consistency judge")
    args = parser.parse_args()
    results: dict[str, Any] = {"args": {key: str(value) for key, value in vars(args).items()}}
    if not args.skip_mechanics:
        results["mechanics"] = mechanics(args.personas, args.posts)
    if not args.skip_local:
        results["real_text"] = real_text(args.card, args.keep, judge=not args.no_judge)
    folder = ROOT / "bench" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "quality.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
