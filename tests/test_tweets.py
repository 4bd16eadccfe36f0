"""Posts: batching, checks and regeneration, unique files, resume, export — on a real server."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import server_settings
from openai_server import FakeOpenAIServer, Reply, SeenRequest
from persona_foundry import tweets
from persona_foundry.calendar import calendar_path, read_calendar
from persona_foundry.cli import app
from persona_foundry.llm.session import LLMSession
from persona_foundry.textchecks import warm_up_checks
from persona_foundry.tweets import TweetOptions, TweetRunSummary, claim_tweet_file, generate_tweets
from persona_foundry.tweets.prompting import _voice_sample
from stage_replies import EXAMPLES, content_reply, distinct_post, requested_slots, schema_name

StartServer = Callable[..., FakeOpenAIServer]
MONTH = "2026-12"
SPANISH = "Hoy he horneado pan de masa madre y salió perfecto, estoy muy orgullosa de mi horno."


def env(server: FakeOpenAIServer) -> dict[str, str]:
    return {"LLM_BASE_URL": server.base_url, "LLM_API_KEY": "k", "LLM_MODEL": "m"}


def make_cards(server: FakeOpenAIServer, make_image, out: Path, *names: str) -> list[Path]:
    images = [str(make_image(f"{name}.png")) for name in names]
    result = CliRunner().invoke(app, ["persona", *images, "--out", str(out)], env=env(server))
    assert result.exit_code == 0, result.output
    return [out / "personas" / f"{name}_persona.json" for name in names]


def drawn_handle(card: Path) -> str:
    """The handle the persona's draw gave it (names are drawn, not the model's)."""
    return str(json.loads(card.read_text())["data"]["extensions"]["persona_foundry"]["core"][
        "handle"])


def run_tweets(server: FakeOpenAIServer, cards: list[Path], out: Path,
               **kwargs: Any) -> TweetRunSummary:
    settings = server_settings(server, **kwargs.pop("settings", {}))
    options = TweetOptions(cards=cards, out_dir=out, month=MONTH, **kwargs)

    async def go() -> TweetRunSummary:
        async with LLMSession.open(settings, out) as session:
            return await generate_tweets(options, session)

    return asyncio.run(go())


def run_with_a_long_first_post(
    start_server: StartServer, make_image, out: Path, *, slow_s: float, count: int,
    slots_per_call: int, max_concurrent: int,
) -> tuple[list[SeenRequest], list[list[str]]]:
    """A posts run against a server whose first batch answers at once with its first post too
    long (the retry at once too) and every other batch after slow_s; all posts made, one
    regenerated. Returns the posts calls and the batches as first asked."""
    served: dict[str, int] = {}
    batches: list[list[str]] = []

    def responder(body: dict[str, Any]) -> Reply:
        if schema_name(body) != "tweets":
            return content_reply(body)
        slots = requested_slots(body)
        fresh = not any(slot in served for slot in slots)
        if fresh:
            batches.append(slots)
        for slot in slots:
            served[slot] = served.get(slot, 0) + 1
        tweets = [{"slot_id": slot, "image_prompt": "a photo",
                   "text": "word " * 70 if slot == batches[0][0] and served[slot] == 1
                   else distinct_post(slot + str(served[slot]))} for slot in slots]
        slow = fresh and len(batches) > 1
        return Reply(json.dumps({"tweets": tweets}), delay_s=slow_s if slow else 0.0)

    server = start_server(responder)
    (card,) = make_cards(server, make_image, out, "ava")
    summary = run_tweets(server, [card], out, count=count, slots_per_call=slots_per_call,
                         settings={"max_concurrent": max_concurrent})
    assert summary.made == count and summary.personas[0].regenerated == 1
    return server.chat_requests("tweets"), batches


def test_posts_fill_slots_in_batches(start_server: StartServer, make_image,
                                     tmp_path: Path) -> None:
    server = start_server(content_reply)
    (card,) = make_cards(server, make_image, tmp_path, "ava")
    # One call in flight at a time: full batches, the rest in the last.
    summary = run_tweets(server, [card], tmp_path, count=20, slots_per_call=8,
                         settings={"max_concurrent": 1})

    assert summary.exit_code == 0 and summary.made == 20
    calls = server.chat_requests("tweets")
    assert sorted(len(requested_slots(r.body)) for r in calls) == [4, 8, 8]
    (result,) = summary.personas
    data = json.loads(result.tweet_file.read_text(encoding="utf-8"))
    assert len(data["tweets"]) == 20 and data["handle"] == drawn_handle(card)
    tweet = data["tweets"][0]
    assert {"slot_id", "scheduled_at", "pillar", "text", "image_prompt", "weighted_length",
            "generation"} <= tweet.keys()
    calendar = read_calendar(calendar_path(tmp_path, "ava", MONTH))
    drafted = [slot for slot in calendar.slots if slot.status == "drafted"]
    assert len(drafted) == 20 and all(s.tweet_file == str(result.tweet_file) for s in drafted)
    assert drafted == sorted(drafted, key=lambda s: s.scheduled_at)[:20]
    for record in data["tweets"]:
        slot = calendar.slot(record["slot_id"])
        assert bool(record["image_prompt"]) == (slot.format == "image")
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        rows = db.execute("SELECT status, prompt_tokens FROM tweets").fetchall()
    assert len(rows) == 20 and all(status == "drafted" and tokens > 0 for status, tokens in rows)


@pytest.mark.parametrize("names", [("ava",), ("ava", "bea")])
def test_posts_are_planned_as_whole_rounds_of_the_window(
    start_server: StartServer, make_image, tmp_path: Path, names: tuple[str, ...]
) -> None:
    server = start_server(content_reply, latency_s=0.05)
    cards = make_cards(server, make_image, tmp_path, *names)
    before = server.max_in_flight
    summary = run_tweets(server, cards, tmp_path, count=40 // len(names), slots_per_call=8,
                         settings={"max_concurrent": 4})

    assert summary.made == 40 and summary.exit_code == 0
    sizes = [len(requested_slots(r.body)) for r in server.chat_requests("tweets")]
    # 40 posts need 5 calls of at most 8: two rounds of the 4 slots, so 8 calls of 5, each
    # slot's last call ending with the others' (not 5 full calls, one running alone).
    assert sizes == [5] * 8
    assert server.max_in_flight <= max(4, before)


class _SlotsLeft:
    """What the dispatcher reads of a persona to pick the next sender."""

    def __init__(self, count: int) -> None:
        self.pending = [None] * count


def test_the_larger_planned_calls_go_first_across_personas() -> None:
    """Sent in a row, the larger calls fall one to each slot of the window."""
    short = _SlotsLeft(15)  # planned as calls of 8 and 7
    long = _SlotsLeft(33)  # more slots left, in smaller calls
    sizes = {short: deque([8, 7]), long: deque([7, 7, 7, 6, 6])}
    sent = []
    while any(sizes.values()):
        sender = tweets._next_sender([t for t in sizes if sizes[t]], sizes)  # type: ignore
        sent.append(sizes[sender].popleft())
        del sender.pending[:sent[-1]]
    assert sent == [8, 7, 7, 7, 7, 6, 6]
    # Equal sizes: the persona with the most slots left.
    fewer, more = _SlotsLeft(7), _SlotsLeft(14)
    sizes = {fewer: deque([7]), more: deque([7, 7])}
    assert tweets._next_sender(list(sizes), sizes) is more  # type: ignore[arg-type]


def test_rejected_slots_go_again_without_waiting_for_the_other_calls(
    start_server: StartServer, make_image, tmp_path: Path
) -> None:
    calls, batches = run_with_a_long_first_post(start_server, make_image, tmp_path, slow_s=1.0,
                                                count=8, slots_per_call=8, max_concurrent=2)
    assert sorted(len(requested_slots(call.body)) for call in calls) == [1, 4, 4]
    (slow,) = [call for call in calls if requested_slots(call.body) == batches[1]]
    (retry,) = [call for call in calls if len(requested_slots(call.body)) == 1]
    assert requested_slots(retry.body) == [batches[0][0]] and "too long" in retry.text
    assert retry.started < slow.finished  # sent while the slow batch was still out


@pytest.mark.parametrize(("quiet_s", "delay_s", "judged_early"),
                         [(0.4, 5.0, False), (0.4, 0.05, True)])
def test_a_reply_is_judged_once_no_other_reply_is_coming_in(
    start_server: StartServer, make_image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    quiet_s: float, delay_s: float, judged_early: bool,
) -> None:
    warm_up_checks()  # judging waits for the language model otherwise
    monkeypatch.setattr(tweets, "JUDGE_QUIET_S", quiet_s)
    monkeypatch.setattr(tweets, "JUDGE_DELAY_S", delay_s)
    # 10 posts, 2 in flight, up to 2 per call: 6 calls planned, 3 sent at once (one waits in
    # the pool), the fourth when the first reply (a post too long) comes in, 2 left to send.
    calls, batches = run_with_a_long_first_post(start_server, make_image, tmp_path, slow_s=0.2,
                                                count=10, slots_per_call=2, max_concurrent=2)
    (retry,) = [call for call in calls[1:] if batches[0][0] in requested_slots(call.body)]
    if judged_early:  # within delay_s, before the slow replies: in the next planned call
        assert len(requested_slots(retry.body)) == 2 and retry is not calls[-1]
    else:  # replies kept coming in until every slot was sent: a call of its own, the last
        assert requested_slots(retry.body) == batches[0][:1] and retry is calls[-1]


def test_a_reply_is_judged_at_once_when_no_slot_is_left_to_send(
    start_server: StartServer, make_image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    warm_up_checks()
    monkeypatch.setattr(tweets, "JUDGE_QUIET_S", 0.4)
    monkeypatch.setattr(tweets, "JUDGE_DELAY_S", 5.0)
    # 4 posts, up to 2 per call, 3 in flight: all 3 calls sent at once.
    calls, batches = run_with_a_long_first_post(start_server, make_image, tmp_path, slow_s=0.2,
                                                count=4, slots_per_call=2, max_concurrent=3)
    slow_replies = [call.finished for call in calls[1:] if batches[0][0] not in
                    requested_slots(call.body)]
    # The three calls go out together and may reach the server in any order: the retry is the
    # later call that asks again for the slot of the first one to arrive.
    (retry,) = [call for call in calls[1:] if batches[0][0] in requested_slots(call.body)]
    assert retry.started < min(slow_replies)  # no waiting for the quiet time


def test_stable_prompt_prefix_then_slots(start_server: StartServer, make_image,
                                         tmp_path: Path) -> None:
    server = start_server(content_reply)
    (card,) = make_cards(server, make_image, tmp_path, "ava")
    run_tweets(server, [card], tmp_path, count=16, slots_per_call=8,
               settings={"max_concurrent": 1})

    first, second = (r.body["messages"] for r in server.chat_requests("tweets"))
    assert first[0] == second[0]
    prefix_one, slots_one = first[1]["content"].split("## Slots")
    prefix_two, slots_two = second[1]["content"].split("## Slots")
    assert prefix_one == prefix_two and slots_one != slots_two
    example = EXAMPLES["tweets"][0]["text"]  # shown as a fragment of voice, never whole
    assert _voice_sample(example) in prefix_one and example not in prefix_one


def test_bad_posts_are_regenerated_with_the_reason(start_server: StartServer, make_image,
                                                   tmp_path: Path) -> None:
    bad = {"too long": "word " * 70, "duplicate": EXAMPLES["tweets"][0]["text"],
           "spanish": SPANISH, "hashtags": "Lovely day at the field #a #b #c #d"}
    served: dict[str, int] = {}

    def responder(body: dict[str, Any]) -> Reply:
        if schema_name(body) != "tweets":
            return content_reply(body)
        tweets = []
        for number, slot in enumerate(requested_slots(body)):
            served[slot] = served.get(slot, 0) + 1
            kinds = list(bad.values())
            text = kinds[number] if served[slot] == 1 and number < len(kinds) else (
                distinct_post(slot + str(served[slot])))
            tweets.append({"slot_id": slot, "text": text, "image_prompt": "a photo"})
        return Reply(json.dumps({"tweets": tweets}))

    server = start_server(responder)
    (card,) = make_cards(server, make_image, tmp_path, "ava")
    summary = run_tweets(server, [card], tmp_path, count=6, slots_per_call=6,
                         settings={"max_concurrent": 1})

    (result,) = summary.personas
    assert result.made == 6 and result.regenerated == 4 and result.failed == 0
    assert result.duplicates == 1
    retry = server.chat_requests("tweets")[1].text
    for reason in ("too long: weighted length", "too similar to an earlier post",
                   "written in 'es', not English", "4 hashtags, the strategy allows 1"):
        assert reason in retry
    texts = [t["text"] for t in json.loads(result.tweet_file.read_text())["tweets"]]
    assert not set(texts) & set(bad.values())


def test_slot_that_never_passes_is_marked_failed(start_server: StartServer, make_image,
                                                 tmp_path: Path) -> None:
    def responder(body: dict[str, Any]) -> Reply:
        if schema_name(body) != "tweets":
            return content_reply(body)
        tweets = [{"slot_id": slot, "text": "x" * 20 + " " + "y" * 270, "image_prompt": "p"}
                  for slot in requested_slots(body)]
        return Reply(json.dumps({"tweets": tweets}))

    server = start_server(responder)
    (card,) = make_cards(server, make_image, tmp_path, "ava")
    summary = run_tweets(server, [card], tmp_path, count=2, slots_per_call=2,
                         settings={"max_concurrent": 1})

    (result,) = summary.personas
    assert result.failed == 2 and result.made == 0 and summary.exit_code == 1
    assert len(server.chat_requests("tweets")) == 3  # three attempts, then give up
    calendar = read_calendar(calendar_path(tmp_path, "ava", MONTH))
    failed = [slot for slot in calendar.slots if slot.status == "failed"]
    assert len(failed) == 2 and "too long" in (failed[0].failure or "")


def test_rerun_continues_after_drafted_slots_and_retries_failed(
    start_server: StartServer, make_image, tmp_path: Path
) -> None:
    broken = {"on": True}

    def responder(body: dict[str, Any]) -> Reply:
        if schema_name(body) == "tweets" and broken["on"] and len(requested_slots(body)) < 4:
            return Reply(status=500)  # the last, shorter batch fails: a crash mid-run
        return content_reply(body)

    server = start_server(responder)
    (card,) = make_cards(server, make_image, tmp_path, "ava")
    first = run_tweets(server, [card], tmp_path, count=10, slots_per_call=4,
                       settings={"max_attempts": 1, "max_concurrent": 1})
    assert first.made == 8 and first.personas[0].failed == 2
    drafted_before = {r["slot_id"] for r in json.loads(
        first.personas[0].tweet_file.read_text())["tweets"]}
    calls_before = len(server.chat_requests("tweets"))

    broken["on"] = False
    second = run_tweets(server, [card], tmp_path, count=2, slots_per_call=4)

    assert second.made == 2 and second.exit_code == 0
    new_calls = server.chat_requests("tweets")[calls_before:]
    asked = {slot for r in new_calls for slot in requested_slots(r.body)}
    assert not asked & drafted_before and len(asked) == 2
    assert second.personas[0].tweet_file != first.personas[0].tweet_file
    calendar = read_calendar(calendar_path(tmp_path, "ava", MONTH))
    assert sum(slot.status == "drafted" for slot in calendar.slots) == 10


def test_killed_run_loses_no_accepted_post(start_server: StartServer, make_image,
                                           tmp_path: Path) -> None:
    hang = {"on": True}
    first_batch: list[str] = []

    def responder(body: dict[str, Any]) -> Reply:
        if schema_name(body) != "tweets":
            return content_reply(body)
        slots = requested_slots(body)
        if not first_batch:
            first_batch.extend(slots)
        slow = hang["on"] and slots != first_batch
        return Reply(content_reply(body).content, delay_s=5.0 if slow else 0.0)

    server = start_server(responder)
    (card,) = make_cards(server, make_image, tmp_path, "ava")
    argv = [sys.executable, "-m", "persona_foundry", "tweets", str(card), "--count", "8",
            "--per-call", "4", "--month", MONTH, "--out", str(tmp_path)]
    process = subprocess.Popen(argv, env={**os.environ, **env(server), "MAX_CONCURRENT": "2"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    drafted: list[tuple[str]] = []
    # Until the first batch is judged (its posts are in the ledger; the file is saved after 2 s):
    while not first_batch or len(drafted) < len(first_batch):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
        with contextlib.suppress(sqlite3.OperationalError), \
                sqlite3.connect(tmp_path / "ledger.db") as db:
            drafted = db.execute("SELECT slot_id FROM tweets WHERE status = 'drafted'").fetchall()
    process.send_signal(signal.SIGKILL)
    process.wait()
    (dead_file,) = (tmp_path / "tweets").glob("ava_*.json")
    assert dead_file.stat().st_size == 0
    calls_before = len(server.chat_requests("tweets"))

    hang["on"] = False
    summary = run_tweets(server, [card], tmp_path, count=8, slots_per_call=4)

    (result,) = summary.personas
    assert result.made == 8 and result.recovered == len(first_batch)
    assert summary.exit_code == 0
    asked = {slot for r in server.chat_requests("tweets")[calls_before:]
             for slot in requested_slots(r.body)}
    assert not asked & set(first_batch) and len(asked) == 8 - len(first_batch)
    saved = json.loads(result.tweet_file.read_text(encoding="utf-8"))["tweets"]
    assert {t["slot_id"] for t in saved} == {row[0] for row in drafted} | asked
    calendar = read_calendar(calendar_path(tmp_path, "ava", MONTH))
    assert sum(slot.status == "drafted" for slot in calendar.slots) == 8


def test_many_personas_share_one_limit_and_a_bad_card_stops_nothing(
    start_server: StartServer, make_image, tmp_path: Path
) -> None:
    server = start_server(content_reply, latency_s=0.05)
    cards = make_cards(server, make_image, tmp_path, "ava", "bo", "cy")
    before = server.max_in_flight
    summary = run_tweets(server, [*cards, tmp_path / "missing_persona.json"], tmp_path,
                         count=24, slots_per_call=4, settings={"max_concurrent": 3})

    assert [p.made for p in summary.personas] == [24, 24, 24, 0]
    assert "file not found" in (summary.personas[3].error or "")
    assert server.max_in_flight <= max(3, before)
    assert summary.exit_code == 1


def test_tweet_file_names_never_collide(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        claimed = list(pool.map(lambda _: claim_tweet_file(tmp_path, "ava"), range(200)))
    script = ("import sys; from pathlib import Path; from persona_foundry.tweets import "
              "claim_tweet_file as c; print('\\n'.join(str(c(Path(sys.argv[1]), 'ava')) "
              "for _ in range(100)))")
    outputs = [subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True,
                              capture_output=True, text=True).stdout.split()
               for _ in range(2)]
    names = [str(p) for p in claimed] + outputs[0] + outputs[1]
    assert len(names) == len(set(names)) == 400


def test_export_posts_csv_and_json(start_server: StartServer, make_image,
                                   tmp_path: Path) -> None:
    server = start_server(content_reply)
    (card,) = make_cards(server, make_image, tmp_path, "ava")
    summary = run_tweets(server, [card], tmp_path, count=5)
    tweet_file = str(summary.personas[0].tweet_file)

    result = CliRunner().invoke(app, ["export-posts", tweet_file, "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 5
    assert rows[0]["account"] == f"@{drawn_handle(card)}"
    assert rows[0]["timezone"] == "America/Chicago"
    assert rows[0]["date"].startswith("2026-12") and len(rows[0]["time"]) == 5
    approved = CliRunner().invoke(app, ["export-posts", tweet_file, "-f", "json",
                                        "--status", "approved"])
    assert json.loads(approved.stdout) == []
    eliza = CliRunner().invoke(app, ["export", str(card), "-f", "eliza", "--out",
                                     str(tmp_path / "exp")])
    assert eliza.exit_code == 0, eliza.output
    (eliza_file,) = (tmp_path / "exp").glob("*.eliza.json")  # named after the drawn name
    character = json.loads(eliza_file.read_text())
    assert rows[0]["text"] in character["postExamples"]


def test_tweets_cli_prints_the_summary(start_server: StartServer, make_image,
                                       tmp_path: Path) -> None:
    server = start_server(content_reply)
    (card,) = make_cards(server, make_image, tmp_path, "ava")
    result = CliRunner().invoke(app, ["tweets", str(card), "--count", "6", "--month", MONTH,
                                      "--out", str(tmp_path)], env=env(server))
    assert result.exit_code == 0, result.output
    assert "posts 6, regenerated 0, failed 0, duplicates caught 0" in " ".join(
        result.output.split())


def test_approve_then_export_only_approved(start_server: StartServer, make_image,
                                           tmp_path: Path) -> None:
    server = start_server(content_reply)
    (card,) = make_cards(server, make_image, tmp_path, "ava")
    summary = run_tweets(server, [card], tmp_path, count=3)
    slots = [t["slot_id"] for t in json.loads(summary.personas[0].tweet_file.read_text())["tweets"]]
    calendar = read_calendar(calendar_path(tmp_path, "ava", MONTH))
    planned = next(slot.id for slot in calendar.slots if slot.status == "planned")

    result = CliRunner().invoke(app, [
        "calendar", str(card), "--month", MONTH, "--out", str(tmp_path),
        "--approve", slots[0], "--approve", planned, "--skip", slots[1]], env=env(server))

    assert result.exit_code == 1  # a planned slot cannot be approved: it has no post yet
    assert "is planned, cannot become approved" in " ".join(result.output.split())
    statuses = {s.id: s.status for s in read_calendar(calendar_path(tmp_path, "ava", MONTH)).slots}
    assert statuses[slots[0]] == "approved" and statuses[slots[1]] == "skipped"
    exported = CliRunner().invoke(app, ["export-posts", str(summary.personas[0].tweet_file),
                                        "-f", "json", "--status", "approved"])
    assert [row["slot_id"] for row in json.loads(exported.stdout)] == [slots[0]]


def test_a_run_stopped_by_its_budget_reports_the_posts_it_saved(
    start_server: StartServer, make_image, tmp_path: Path
) -> None:
    server = start_server(content_reply)
    (card,) = make_cards(server, make_image, tmp_path, "ava")
    settings = {"llm_model": "gpt-4o", "max_concurrent": 1}
    # The month plan and about half the calls of 2 posts fit in this budget (each call
    # reserves its worst case first).
    summary = run_tweets(server, [card], tmp_path, count=30, slots_per_call=2,
                         settings={**settings, "budget_usd": 0.03})

    assert summary.fatal_error is not None and "budget" in summary.fatal_error
    (persona,) = summary.personas
    assert 0 < persona.made < 30 and persona.tweet_file is not None
    saved = json.loads(persona.tweet_file.read_text(encoding="utf-8"))["tweets"]
    assert len(saved) == persona.made
    drafted = [s for s in read_calendar(calendar_path(tmp_path, "ava", MONTH)).slots
               if s.status == "drafted"]
    assert len(drafted) == persona.made
    assert summary.cost_usd <= 0.03 and summary.exit_code == 2
