"""The studio's page times: 50 personas × 60 slots, 1,000 requests from a second process.

The folder is built synthetically through the store (cards, calendars and tweet files as the
CLI writes them, no LLM). The studio runs under uvicorn in its own process, wrapped in a
timer that reports each response's server time in a `Server-Timing` header; this process
sends the requests one after another over one keep-alive connection (so server times are not
inflated by queueing) and reads the headers. Bounds (issue 17): the all-personas month page
≤ 300 ms and one persona's calendar or post editor ≤ 50 ms at p95, on 2 cores.

    python bench/studio.py                      # 50 × 60, 1,000 requests
    python bench/studio.py --personas 5 --requests 100
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import random
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from persona_foundry.files import atomic_write_json
from persona_foundry.settings import Settings
from persona_foundry.store import (
    Calendar,
    OutputLayout,
    Slot,
    TweetFile,
    TweetRecord,
    claim_tweet_file,
    create_calendar,
    save_tweet_file,
)

RESULTS = Path(__file__).parent / "results" / "studio.json"
MONTH = "2026-12"
BOUNDS_MS = {"month, all personas": 300.0, "calendar, one persona": 50.0,
             "post editor": 50.0}
SHARE = {"month, all personas": 0.2, "calendar, one persona": 0.4, "post editor": 0.4}
PILLARS = ("craft", "travel", "food", "behind the scenes")
WORDS = ("bread", "market", "harbour", "coffee", "morning", "bike", "studio", "paint", "light",
         "rain", "garden", "friends", "train", "museum", "notebook", "sunset", "kitchen")
STATIC = ("/static/htmx.min.js", "/static/studio.js", "/static/studio.css")


def _card(key: str, index: int) -> dict[str, Any]:
    strategy = {
        "pillars": [{"name": name, "description": "", "share_percent": 25} for name in PILLARS],
        "posts_per_day": 2, "posting_times": ["09:00", "19:00"], "tone": "warm",
        "max_hashtags_per_tweet": 2, "favorite_hashtags": [], "emoji_use": "moderate",
        "topics_to_avoid": [],
    }
    core = {"name": f"Persona {index}", "handle": f"persona{index}", "timezone": "Europe/Paris",
            "bio": f"Maker number {index} who posts about bread and bikes.",
            "occupation": "baker", "location": "Lyon"}
    stages = {name: {"status": "ok"} for name in ("core", "strategy")}
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": f"Persona {index}", "description": core["bio"], "personality": "curious",
        "scenario": "", "first_mes": "", "mes_example": "", "creator_notes": "",
        "system_prompt": "", "post_history_instructions": "", "alternate_greetings": [],
        "tags": ["baker"], "creator": "bench", "character_version": "1",
        "extensions": {"persona_foundry": {"core": core, "strategy": strategy,
                                           "stages": stages, "language": "English"}}}}


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 30))).capitalize() + "."


def build_folder(out: Path, personas: int, slots: int) -> list[tuple[str, str]]:
    """Cards, calendars and tweet files through the store; the (persona, slot) posts."""
    layout = OutputLayout(out)
    rng = random.Random(17)
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    posts = []
    for index in range(personas):
        key = f"p{index:03d}"
        layout.personas_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(layout.card_path(key), _card(key, index))
        moments = [start + timedelta(minutes=int(i * 30 * 24 * 60 / slots)) for i in range(slots)]
        tweet_path = claim_tweet_file(layout.tweets_dir, key)
        records = [TweetRecord(id=f"{m:%Y%m%d-%H%M}", slot_id=f"{m:%Y%m%d-%H%M}",
                               scheduled_at=m.isoformat(), pillar=PILLARS[i % len(PILLARS)],
                               theme="weekly", text=_text(rng))
                   for i, m in enumerate(moments)]
        save_tweet_file(tweet_path, lambda tweets, rs=records: tweets.tweets.extend(rs),
                        initial=TweetFile(persona=f"Persona {index}", persona_key=key,
                                          month=MONTH, timezone="UTC"))
        calendar = Calendar(
            persona=f"Persona {index}", persona_key=key, month=MONTH, timezone="UTC",
            themes=["weekly"], events=[], created_at=start.isoformat(),
            updated_at=start.isoformat(),
            slots=[Slot(id=r.slot_id, scheduled_at=r.scheduled_at, pillar=r.pillar,
                        theme=r.theme, status="drafted", tweet_file=str(tweet_path),
                        text=r.text) for r in records])
        create_calendar(layout.calendar_path(key, MONTH), calendar)
        posts += [(key, record.slot_id) for record in records]
    return posts


def _serve(out: str, port: int) -> None:
    """The studio under uvicorn, every response stamped with its server time."""
    import uvicorn  # noqa: PLC0415  # the server process only

    from persona_foundry.studio.app import StudioConfig, create_app  # noqa: PLC0415
    from persona_foundry.studio.security import host_names  # noqa: PLC0415

    app = create_app(StudioConfig(Path(out), Settings(_env_file=None),  # type: ignore[call-arg]
                                  host_names("127.0.0.1", port)))

    async def timed(scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()

        async def stamped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - started) * 1000
                message["headers"] = [*message.get("headers", []),
                                      (b"server-timing", f"app;dur={ms:.2f}".encode())]
            await send(message)

        await app(scope, receive, stamped)

    uvicorn.run(timed, host="127.0.0.1", port=port, log_level="warning")


def _requests(posts: list[tuple[str, str]], total: int,
              rng: random.Random) -> list[tuple[str, str]]:
    keys = sorted({key for key, _ in posts})
    wanted = []
    for kind, share in SHARE.items():
        for _ in range(round(total * share)):
            if kind == "month, all personas":
                wanted.append((kind, f"/calendar?month={MONTH}"))
            elif kind == "calendar, one persona":
                wanted.append((kind, f"/calendar?month={MONTH}&persona={rng.choice(keys)}"))
            else:
                key, slot = rng.choice(posts)
                wanted.append((kind, f"/post/{key}/{MONTH}/{slot}"))
    rng.shuffle(wanted)
    return wanted


def _percentile(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1] if len(
        values) > 1 else values[0]


def _page_weight(client: httpx.Client, key: str) -> dict[str, int]:
    html = client.get(f"/calendar?month={MONTH}&persona={key}").content
    assets = b"".join(client.get(path).content for path in STATIC)
    return {"html_bytes": len(html), "scripts_and_styles_bytes": len(assets),
            "total_bytes": len(html) + len(assets),
            "total_gzip_bytes": len(gzip.compress(html)) + len(gzip.compress(assets))}


def main() -> None:
    """Build, serve, load, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=50)
    parser.add_argument("--slots", type=int, default=60)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pf-bench-studio-"))
    built = time.perf_counter()
    posts = build_folder(folder, args.personas, args.slots)
    print(f"built {args.personas} personas × {args.slots} slots in "
          f"{time.perf_counter() - built:.1f} s")
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(str(folder), args.port), daemon=True)
    server.start()
    times: dict[str, list[float]] = defaultdict(list)
    client_ms: dict[str, list[float]] = defaultdict(list)
    with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=30) as client:
        for _ in range(200):
            try:
                client.get("/static/studio.css")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        for _kind, url in _requests(posts, 30, random.Random(1)):  # warm the caches
            client.get(url)
        for kind, url in _requests(posts, args.requests, random.Random(2)):
            sent = time.perf_counter()
            answer = client.get(url)
            client_ms[kind].append((time.perf_counter() - sent) * 1000)
            answer.raise_for_status()
            times[kind].append(float(answer.headers["server-timing"].split("dur=")[1]))
        weight = _page_weight(client, posts[0][0])
    server.terminate()
    report: dict[str, Any] = {"personas": args.personas, "slots": args.slots,
                              "requests": args.requests, "page_weight": weight, "pages": {}}
    print(f"{'page':24} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'bound':>7} {'client p95':>11}")
    for kind, bound in BOUNDS_MS.items():
        p50, p95 = _percentile(times[kind], 50), _percentile(times[kind], 95)
        client_p95 = _percentile(client_ms[kind], 95)
        verdict = "ok" if p95 <= bound else "OVER"
        print(f"{kind:24} {len(times[kind]):5d} {p50:8.1f} {p95:8.1f} {bound:7.0f} "
              f"{client_p95:11.1f}  {verdict}")
        report["pages"][kind] = {"n": len(times[kind]), "p50_ms": round(p50, 1),
                                 "p95_ms": round(p95, 1), "bound_ms": bound,
                                 "client_p95_ms": round(client_p95, 1)}
    print(f"calendar page weight (one persona): HTML {weight['html_bytes']:,} B + scripts and "
          f"styles {weight['scripts_and_styles_bytes']:,} B = {weight['total_bytes']:,} B "
          f"({weight['total_gzip_bytes']:,} B gzipped)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
