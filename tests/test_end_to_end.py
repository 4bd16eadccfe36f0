"""Every command end to end against a schema-following server (tests/schema_server.py).

The server answers each request with a random instance of exactly the schema it was sent, as
OpenAI strict outputs, vLLM or a llama.cpp grammar may: whatever the code accepts less than its
schema allows shows up here as a failed command, a failed slot or extra calls.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import Result
from typer.testing import CliRunner

import test_images
from openai_server import FakeOpenAIServer
from persona_foundry.calendar import calendar_path, read_calendar
from persona_foundry.cards.exchange import EXPORT_SUFFIXES
from persona_foundry.cli import app
from persona_foundry.files import persona_key
from persona_foundry.settings import Settings
from persona_foundry.stages import STAGES
from persona_foundry.tweets import STAGE_NAME as POSTS_STAGE
from schema_server import SchemaResponder
from test_images import SIZE
from test_tweets import MONTH, env

SEEDS = [1, 2, 3]
POSTS = 100
MAX_CALLS_PER_POST = 0.25
DEFAULT_WINDOW = Settings.model_fields["max_concurrent"].default
REGENERATION_CALLS = 2
CPU_WORKERS = "2"  # one torch thread each: threads sharing two busy cores run ~100x slower
# A persona posting 0.2 times a day has 6 slots a month: 100 posts then take 17 months.
MAX_MONTHS = 24
CARD_FORMATS = ("v2", "v3", "png", "charx")  # the exports `import` reads back as cards
tiny_model = test_images.tiny_model  # the suite's tiny random diffusers pipeline (a fixture)


def run(server: FakeOpenAIServer | None, *args: str | Path) -> Result:
    """One CLI command against the server."""
    return CliRunner().invoke(app, [str(arg) for arg in args],
                              env=env(server) if server else None)


def succeeded(result: Result) -> Result:
    """The result, after checking the command exited 0."""
    assert result.exit_code == 0, result.output
    return result


def flat(output: str) -> str:
    """Output on one line: rich wraps at the terminal width."""
    return " ".join(output.split())


def refusals(server: FakeOpenAIServer) -> list[str]:
    """What the schema server refused to answer (a schema it could not honour)."""
    return cast(SchemaResponder, server.responder).refused


def stage_statuses(card: Path) -> dict[str, str]:
    """Each stage's status as the card records it."""
    data = json.loads(card.read_text(encoding="utf-8"))
    stages = data["data"]["extensions"]["persona_foundry"]["stages"]
    return {name: stage["status"] for name, stage in stages.items()}


def assert_complete(card: Path) -> None:
    """The card exists and every stage of the DAG finished."""
    assert card.is_file(), card
    assert stage_statuses(card) == {stage.name: "ok" for stage in STAGES}


def make_persona(server: FakeOpenAIServer, image: Path, out: Path) -> Path:
    """The `persona` command on one image; its card, complete."""
    succeeded(run(server, "persona", image, "--out", out))
    card = out / "personas" / f"{image.stem}_persona.json"
    assert_complete(card)
    return card


def next_month(month: str) -> str:
    """`2026-12` → `2027-01`."""
    year, number = map(int, month.split("-"))
    return f"{year + number // 12}-{number % 12 + 1:02d}"


def tweet_records(out: Path, key: str) -> list[dict[str, Any]]:
    """Every post of the persona's tweet files."""
    return [record for path in sorted((out / "tweets").glob(f"{key}_*.json"))
            for record in json.loads(path.read_text(encoding="utf-8"))["tweets"]]


def max_post_calls(posts: int) -> float:
    """The most post calls one `tweets` run may take for `posts` slots: a quarter call a post,
    or one round of the concurrency window (the dispatcher spreads a few posts over the whole
    window, at most a call a post) and a few calls for drafts rejected for what no schema can
    state (a near-duplicate of an earlier post)."""
    return max(posts * MAX_CALLS_PER_POST, min(posts, DEFAULT_WINDOW) + REGENERATION_CALLS)


def plan_and_write_month(server: FakeOpenAIServer, card: Path, out: Path, month: str,
                         wanted: int) -> None:
    """`calendar`, then `tweets --count wanted` for one month, in few calls.

    A month with fewer slots than wanted must say so and exit 1; otherwise `tweets` exits 0.
    """
    planned = succeeded(run(server, "calendar", card, "--month", month, "--out", out))
    slots = read_calendar(calendar_path(out, persona_key(card), month)).slots
    assert slots and f"{len(slots)} slots" in flat(planned.output)
    calls_before = len(server.chat_requests(POSTS_STAGE))
    written = run(server, "tweets", card, "--count", str(wanted), "--month", month, "--out", out)
    if len(slots) >= wanted:
        succeeded(written)
    else:
        assert written.exit_code == 1, written.output
        assert f"only {len(slots)} open slot(s) left" in flat(written.output)
    assert_no_failed_slot(out, persona_key(card), month)
    calls = len(server.chat_requests(POSTS_STAGE)) - calls_before
    posts = min(wanted, len(slots))
    assert calls <= max_post_calls(posts), f"{calls} calls for {posts} posts"


def assert_no_failed_slot(out: Path, key: str, month: str) -> None:
    """No slot of the month failed (the failures listed if one did)."""
    slots = read_calendar(calendar_path(out, key, month)).slots
    failed = {slot.id: slot.failure for slot in slots if slot.status == "failed"}
    assert not failed


def write_posts(server: FakeOpenAIServer, card: Path, out: Path, wanted: int) -> list[str]:
    """Plan months from MONTH on and write posts until `wanted` are drafted; their months."""
    months, month, drafted = [], MONTH, 0
    while drafted < wanted:
        assert len(months) < MAX_MONTHS, f"{drafted} posts after {len(months)} months"
        plan_and_write_month(server, card, out, month, wanted - drafted)
        months.append(month)
        drafted = len(tweet_records(out, persona_key(card)))
        month = next_month(month)
    return months


def assert_posts_fill_their_slots(out: Path, key: str, months: list[str]) -> None:
    """POSTS drafted posts, one per slot."""
    records = tweet_records(out, key)
    slots = {slot.id: slot for month in months
             for slot in read_calendar(calendar_path(out, key, month)).slots}
    assert len(records) == POSTS
    assert len({record["slot_id"] for record in records}) == POSTS
    assert all(slots[record["slot_id"]].status == "drafted" for record in records)


def assert_images_attached(out: Path, key: str) -> None:
    """Every image post has its picture on disk."""
    image_posts = [record for record in tweet_records(out, key) if record["format"] == "image"]
    assert image_posts
    for record in image_posts:
        assert Path(record["image_path"]).is_file(), record


@pytest.mark.parametrize("schema_server", SEEDS, indirect=True)
def test_persona_calendar_tweets_and_images(schema_server: FakeOpenAIServer, make_image: Any,
                                            tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    card = make_persona(schema_server, make_image("ava.png"), out)
    key = persona_key(card)

    months = write_posts(schema_server, card, out, POSTS)
    assert_posts_fill_their_slots(out, key, months)

    tweet_files = sorted((out / "tweets").glob(f"{key}_*.json"))
    succeeded(run(None, "images", *tweet_files, "--model", tiny_model, "--num-gpus",
                  CPU_WORKERS, *SIZE))
    assert_images_attached(out, key)
    assert not refusals(schema_server)


def export_and_validate(cards: list[Path], folder: Path) -> list[Path]:
    """`export --format all` and `validate` of every export; the exported files."""
    succeeded(run(None, "export", *cards, "--format", "all", "--out", folder))
    exported = sorted(folder.iterdir())
    for suffix in EXPORT_SUFFIXES.values():  # every format of every card, none overwritten
        assert sum(path.name.endswith(suffix) for path in exported) == len(cards), exported
    succeeded(run(None, "validate", *exported))
    return exported


@pytest.mark.parametrize("schema_server", SEEDS, indirect=True)
def test_persona_export_validate_and_import(schema_server: FakeOpenAIServer, make_image: Any,
                                            tmp_path: Path) -> None:
    card = make_persona(schema_server, make_image("ava.png"), tmp_path / "out")
    exported = export_and_validate([card], tmp_path / "exports")

    readable = [path for path in exported if any(
        path.name.endswith(EXPORT_SUFFIXES[fmt]) for fmt in CARD_FORMATS)]
    succeeded(run(None, "import", *readable, "--out", tmp_path / "imported"))
    imported = sorted((tmp_path / "imported" / "personas").glob("*.json"))
    assert len(imported) == len(CARD_FORMATS)
    name = json.loads(card.read_text(encoding="utf-8"))["data"]["name"]
    for path in imported:
        assert json.loads(path.read_text(encoding="utf-8"))["data"]["name"] == name
    assert not refusals(schema_server)


@pytest.mark.parametrize("schema_server", SEEDS[:1], indirect=True)
def test_a_batch_of_five_personas(schema_server: FakeOpenAIServer, make_image: Any,
                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    images = [make_image(f"p{number}.png") for number in range(5)]
    succeeded(run(schema_server, "persona", *images, "--out", out))
    cards = [out / "personas" / f"{image.stem}_persona.json" for image in images]
    for card in cards:
        assert_complete(card)
    identities = [json.loads(card.read_text(encoding="utf-8"))["data"]["extensions"]
                  ["persona_foundry"]["core"] for card in cards]
    assert len({core["name"] for core in identities}) == 5
    assert len({core["handle"] for core in identities}) == 5

    export_and_validate(cards, tmp_path / "exports")
    for card in cards:
        succeeded(run(schema_server, "calendar", card, "--month", MONTH, "--out", out))
    assert not refusals(schema_server)
