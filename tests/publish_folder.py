"""The output folder and servers the publish tests share: one persona, approved slots, its
images and tweet file; its accounts' secrets; mastodon-mock seeded with its account."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from mastodon import Mastodon
from mastodon_mock.config import SeedAccount, SeedConfig
from mastodon_mock.testing import MockServer
from PIL import Image

from persona_foundry.ledger import open_ledger
from persona_foundry.publish import PLATFORMS, Publisher, PublishSummary
from persona_foundry.store import (
    Account,
    Calendar,
    OutputLayout,
    SecretRef,
    Slot,
    TweetFile,
    TweetRecord,
    create_calendar,
    read_calendar,
    save_tweet_file,
    update_accounts,
)

MASTODON_TOKEN = "mastodon-SECRET-token-7f3a9c"
BLUESKY_PASSWORD = "bsky-SECRET-app-pass-4d2e"
POSTIZ_KEY = "postiz-SECRET-key-91b0"
X_SECRETS = {"consumer_key": "x-ck-public-1", "consumer_secret": "x-SECRET-cs-5e6f",
             "access_token": "x-at-SECRET-7788", "access_token_secret": "x-SECRET-ats-99aa"}
ALL_SECRETS = (MASTODON_TOKEN, BLUESKY_PASSWORD, POSTIZ_KEY, *X_SECRETS.values())
ZONE = ZoneInfo("Europe/Paris")
WORKER = Path(__file__).parent / "publish_worker.py"


def _picture(path: Path, size: tuple[int, int] = (64, 48), *, noise: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if noise:
        Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(path)
    else:
        Image.new("RGB", size, (30, 90, 160)).save(path)


def make_folder(root: Path, count: int, *, start: datetime | None = None,
                image: bool = True, big_image: bool = False) -> OutputLayout:
    """An output folder with one persona whose `count` slots are approved, one hour apart."""
    layout = OutputLayout(root / "out")
    first = start or datetime.now(UTC) - timedelta(hours=count + 1)
    tweet_path = layout.tweets_dir / "ava_20261201_000000_000000.json"
    slots, records = [], []
    for number in range(count):
        slot_id = f"s{number:02d}"
        when = (first + timedelta(hours=number)).astimezone(ZONE).isoformat()
        text = f"Post {number}: the lighthouse keeps its watch tonight #sea{number}"
        picture = layout.images_for("ava") / f"{slot_id}.png"
        if image:
            _picture(picture, (1400, 1000) if big_image else (64, 48), noise=big_image)
        slots.append(Slot(id=slot_id, scheduled_at=when, pillar="sea", theme="lighthouses",
                          format="image" if image else "text", status="approved",
                          tweet_file=str(tweet_path), text=text,
                          image_path=str(picture) if image else None))
        records.append(TweetRecord(id=f"t{number}", slot_id=slot_id, scheduled_at=when,
                                   text=text, format="image" if image else "text",
                                   image_prompt=f"a lighthouse at dusk, photo {number}"))
    stamp = datetime.now(UTC).isoformat()
    create_calendar(layout.calendar_path("ava", "2026-12"), Calendar(
        persona="Ava", persona_key="ava", month="2026-12", timezone="Europe/Paris",
        themes=["sea"], events=[], slots=slots, created_at=stamp, updated_at=stamp))
    initial = TweetFile(persona="Ava", persona_key="ava", handle="ava", month="2026-12",
                        timezone="Europe/Paris", tweets=records)
    tweet_path.parent.mkdir(parents=True, exist_ok=True)
    save_tweet_file(tweet_path, lambda tweets: None, initial=initial)
    return layout


def add_account(layout: OutputLayout, platform: str, api_base: str, **fields: Any) -> None:
    secrets = {name: SecretRef(env=f"PF_TEST_{platform.upper()}_{name.upper()}")
               for name in PLATFORMS[platform].secret_names}
    account = Account(persona="ava", platform=platform, api_base=api_base, secrets=secrets,
                      **fields)
    update_accounts(layout.accounts_path, lambda accounts: accounts.put(account))


def publish(layout: OutputLayout, **options: Any) -> PublishSummary:
    ledger = open_ledger(layout.ledger_path)
    try:
        publisher = Publisher(layout, ledger, PLATFORMS, run_id="test")
        return asyncio.run(publisher.run_once(**options))
    finally:
        ledger.close()


def slots(layout: OutputLayout) -> list[Slot]:
    return read_calendar(layout.calendar_path("ava", "2026-12")).slots


def ledger_rows(layout: OutputLayout) -> list[tuple[str, str]]:
    with sqlite3.connect(layout.ledger_path) as db:
        return [(str(r[0]), str(r[1])) for r in
                db.execute("SELECT slot_id, status FROM publish_attempts ORDER BY id")]


def set_secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every account's secrets, in the environment variables `add_account` names."""
    monkeypatch.setenv("PF_TEST_MASTODON_ACCESS_TOKEN", MASTODON_TOKEN)
    monkeypatch.setenv("PF_TEST_BLUESKY_APP_PASSWORD", BLUESKY_PASSWORD)
    monkeypatch.setenv("PF_TEST_POSTIZ_API_KEY", POSTIZ_KEY)
    for name, value in X_SECRETS.items():
        monkeypatch.setenv(f"PF_TEST_X_{name.upper()}", value)


def mastodon_server() -> Iterator[MockServer]:
    """mastodon-mock on 127.0.0.1 with one account, ava, whose token is MASTODON_TOKEN."""
    seed = SeedConfig(accounts=[SeedAccount(username="ava", display_name="Ava",
                                            access_token=MASTODON_TOKEN)])
    with MockServer(seed=seed) as server:
        yield server


def statuses(server: MockServer) -> list[Any]:
    api = Mastodon(access_token=MASTODON_TOKEN, api_base_url=server.base_url)
    me = api.account_verify_credentials()
    return list(api.account_statuses(me["id"], limit=40))


def add_fault(server: MockServer, rule: dict[str, Any]) -> None:
    """mastodon-mock's fault injection: the next matching requests get this answer."""
    httpx.post(f"{server.base_url}/api/v1/_mock/faults", json=rule, timeout=10).raise_for_status()


def assert_no_secret_written(layout: OutputLayout) -> None:
    for path in layout.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in ALL_SECRETS:
                assert secret.encode() not in data, (path, secret)
