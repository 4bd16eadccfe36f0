"""`accounts add` and `publish` through the CLI (typer's CliRunner), on mastodon-mock."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mastodon_mock.config import SeedAccount, SeedConfig
from mastodon_mock.testing import MockServer
from typer.testing import CliRunner

from persona_foundry.cli import app
from persona_foundry.publish import publisher_lock
from publish_folder import MASTODON_TOKEN, make_folder, slots, statuses


@pytest.fixture
def mastodon() -> Iterator[MockServer]:
    seed = SeedConfig(accounts=[SeedAccount(username="ava", access_token=MASTODON_TOKEN)])
    with MockServer(seed=seed) as server:
        yield server


def _card(layout_root: Path) -> Path:
    card = layout_root / "personas" / "ava_persona.json"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text("{}")
    return card


def test_accounts_add_names_the_secret_and_never_stores_it(tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 1, image=False)
    result = CliRunner().invoke(app, [
        "accounts", "add", str(_card(layout.root)), "--platform", "mastodon",
        "--api-base", "https://mastodon.social", "--token-env", "AVA_MASTODON_TOKEN"],
        env={"AVA_MASTODON_TOKEN": MASTODON_TOKEN})

    assert result.exit_code == 0, result.output
    saved = yaml.safe_load(layout.accounts_path.read_text())
    assert saved["accounts"][0]["persona"] == "ava"
    assert saved["accounts"][0]["secrets"] == {"access_token": {"env": "AVA_MASTODON_TOKEN"}}
    assert MASTODON_TOKEN not in layout.accounts_path.read_text() + result.output


def test_accounts_add_x_takes_its_four_secrets_and_says_which_are_missing(
        tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 1, image=False)
    card = str(_card(layout.root))
    base = ["accounts", "add", card, "--platform", "x", "--api-base", "https://api.x.com"]

    missing = CliRunner().invoke(app, [*base, "--token-env", "X_CK"])
    complete = CliRunner().invoke(app, [
        *base, "--secret", "consumer_key=env:X_CK", "--secret", "consumer_secret=env:X_CS",
        "--secret", "access_token=keyring:persona-foundry/ava-x",
        "--secret", "access_token_secret=env:X_ATS"])

    assert missing.exit_code == 2
    assert "missing: consumer_secret, access_token, access_token_secret" in " ".join(
        missing.output.split())
    assert complete.exit_code == 0, complete.output
    secrets = yaml.safe_load(layout.accounts_path.read_text())["accounts"][0]["secrets"]
    assert secrets["access_token"] == {"keyring_service": "persona-foundry",
                                       "keyring_user": "ava-x"}


def test_publish_dry_run_then_now_then_export_posts_shows_the_url(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 2, image=False)
    env = {"AVA_MASTODON_TOKEN": MASTODON_TOKEN}
    added = CliRunner().invoke(app, [
        "accounts", "add", str(_card(layout.root)), "--platform", "mastodon",
        "--api-base", mastodon.base_url, "--token-env", "AVA_MASTODON_TOKEN"], env=env)
    assert added.exit_code == 0, added.output

    dry = CliRunner().invoke(app, ["publish", str(layout.root), "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "s00" in dry.output and statuses(mastodon) == []

    now = CliRunner().invoke(app, ["publish", str(layout.root), "--now"], env=env)
    assert now.exit_code == 0, now.output
    assert len(statuses(mastodon)) == 2 and MASTODON_TOKEN not in now.output

    exported = CliRunner().invoke(app, ["export-posts", str(layout.tweet_paths()[0]),
                                        "--status", "posted"])
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [row["post_url"] for row in rows] == [slot.publish.url for slot in slots(layout)
                                                 if slot.publish]
    assert all(row["post_id"] for row in rows)


def test_publish_wants_one_mode_and_a_free_lock(tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 1, image=False)

    both = CliRunner().invoke(app, ["publish", str(layout.root), "--now", "--watch"])
    bad_day = CliRunner().invoke(app, ["publish", str(layout.root), "--now",
                                       "--through", "31/12"])
    with publisher_lock(layout):
        busy = CliRunner().invoke(app, ["publish", str(layout.root), "--now"])

    assert both.exit_code == 2 and "one of --dry-run, --now, --watch" in both.output
    assert bad_day.exit_code == 2 and "2026-12-31" in bad_day.output
    assert busy.exit_code == 2 and "another publisher" in busy.output
