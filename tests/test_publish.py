"""Publishing on Mastodon (mastodon-mock, a real server on 127.0.0.1), the crash and restart
cases, the dry run and the watch loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mastodon import Mastodon
from mastodon_mock.testing import MockServer

from persona_foundry.store import Calendar, PublishRecord, read_tweet_file, update_calendar
from publish_folder import (
    MASTODON_TOKEN,
    WORKER,
    ZONE,
    add_account,
    add_fault,
    assert_no_secret_written,
    ledger_rows,
    make_folder,
    mastodon_server,
    publish,
    set_secrets_in_env,
    slots,
    statuses,
)


@pytest.fixture(autouse=True)
def _secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    set_secrets_in_env(monkeypatch)


@pytest.fixture
def mastodon() -> Iterator[MockServer]:
    yield from mastodon_server()


# --- Mastodon (mastodon-mock) ------------------------------------------------------------


def test_thirty_posts_with_images_go_out_once_each_with_alt_text(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 30)
    add_account(layout, "mastodon", mastodon.base_url)

    summary = publish(layout)
    again = publish(layout)  # nothing left: a second run sends nothing

    posted = statuses(mastodon)
    assert len(posted) == 30 and summary.exit_code == 0 and again.outcomes == []
    assert all(len(s["media_attachments"]) == 1 for s in posted)
    assert {s["media_attachments"][0]["description"] for s in posted} == {
        f"a lighthouse at dusk, photo {n}" for n in range(30)}
    by_url = {s["url"] for s in posted}
    assert all(slot.status == "posted" and slot.publish and slot.publish.url in by_url
               for slot in slots(layout))
    records = read_tweet_file(layout.tweet_paths()[0]).tweets
    assert all(record.posted_url in by_url and record.posted_id for record in records)
    assert [status for _, status in ledger_rows(layout)].count("sending") == 30
    assert [status for _, status in ledger_rows(layout)].count("posted") == 30
    assert_no_secret_written(layout)


def test_killed_after_send_before_the_slot_update_then_restarted_posts_exactly_thirty(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 30)
    add_account(layout, "mastodon", mastodon.base_url)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    killed = subprocess.run([sys.executable, str(WORKER), str(layout.root), "12"], env=env,
                            capture_output=True, timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL
    uncertain = [slot for slot in slots(layout) if slot.status == "publishing"]
    assert len(uncertain) == 1 and len(statuses(mastodon)) == 12

    restarted = subprocess.run([sys.executable, str(WORKER), str(layout.root), "0"], env=env,
                               capture_output=True, timeout=120, check=False)
    assert restarted.returncode == 0, restarted.stderr.decode()[-2000:]
    assert len(statuses(mastodon)) == 30
    assert all(slot.status == "posted" for slot in slots(layout))
    assert (uncertain[0].id, "found") in ledger_rows(layout)


def test_a_429_with_its_reset_two_seconds_ahead_waits_then_succeeds(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 2, image=False)
    add_account(layout, "mastodon", mastodon.base_url)
    reset = int(time.time()) + 2
    add_fault(mastodon, {"match": {"methods": ["POST"], "path": "/api/v1/statuses"},
                         "effect": {"type": "ratelimit", "headers": {
                             "X-RateLimit-Reset": str(reset), "Retry-After": "2"}},
                         "count": 1})

    summary = publish(layout)

    assert [o.status for o in summary.outcomes] == ["posted", "posted"]
    assert time.time() >= reset  # it waited for the reset rather than giving up
    assert len(statuses(mastodon)) == 2


def test_a_refused_post_fails_with_the_platforms_reason_and_the_rest_go_on(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 3, image=False)
    add_account(layout, "mastodon", mastodon.base_url)
    add_fault(mastodon, {"match": {"methods": ["POST"], "path": "/api/v1/statuses"},
                         "effect": {"type": "status", "status": 422, "body": {
                             "error": "Validation failed: Text contains a blocked word"}},
                         "count": 1})

    summary = publish(layout)

    first, *rest = slots(layout)
    assert first.status == "failed" and "blocked word" in (first.failure or "")
    assert [slot.status for slot in rest] == ["posted", "posted"]
    assert len(statuses(mastodon)) == 2 and summary.exit_code == 1


def test_skipped_unapproved_and_edited_posts_are_never_sent(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 4, image=False)
    add_account(layout, "mastodon", mastodon.base_url)

    def change(calendar: Calendar) -> None:
        calendar.slots[0].apply("skip")
        calendar.slots[1].apply("edit")  # edited after approval: needs approving again
        calendar.slots[2].status = "drafted"

    update_calendar(layout.calendar_path("ava", "2026-12"), change)
    publish(layout)

    assert [slot.status for slot in slots(layout)] == ["skipped", "drafted", "drafted",
                                                       "posted"]
    assert [s["content"] for s in statuses(mastodon)] == [
        "<p>Post 3: the lighthouse keeps its watch tonight #sea3</p>"]


def test_native_scheduling_hands_future_posts_to_mastodon_within_its_limits(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 3, image=False, start=datetime.now(UTC) + timedelta(hours=2))
    add_account(layout, "mastodon", mastodon.base_url, native_schedule=True)

    summary = publish(layout)

    assert [o.status for o in summary.outcomes] == ["scheduled"] * 3
    assert all(slot.publish and slot.publish.scheduled for slot in slots(layout))
    assert statuses(mastodon) == []  # held by the server until their time


# --- dry run and the watch loop ----------------------------------------------------------


def test_dry_run_says_what_goes_now_and_when_the_rest_goes(
        mastodon: MockServer, tmp_path: Path) -> None:
    start = datetime.now(UTC) - timedelta(minutes=90)
    layout = make_folder(tmp_path, 4, image=False, start=start)
    add_account(layout, "mastodon", mastodon.base_url)

    summary = publish(layout, dry_run=True)

    assert [o.slot_id for o in summary.outcomes] == ["s00", "s01"]
    assert [slot_id for _, slot_id, _ in summary.upcoming] == ["s02", "s03"]
    assert summary.next_due is not None and summary.next_due.tzinfo is not None
    assert statuses(mastodon) == [] and all(s.status == "approved" for s in slots(layout))


def test_through_treats_slots_up_to_that_day_as_due(mastodon: MockServer,
                                                    tmp_path: Path) -> None:
    start = datetime.now(UTC) + timedelta(days=3)
    layout = make_folder(tmp_path, 2, image=False, start=start)
    add_account(layout, "mastodon", mastodon.base_url)

    assert publish(layout).outcomes == []
    summary = publish(layout, through=start.astimezone(ZONE).date() + timedelta(days=1))

    assert [o.status for o in summary.outcomes] == ["posted", "posted"]


def _wait_for(predicate: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)


def test_watch_posts_at_the_slots_time_survives_a_restart_and_stops_on_sigterm(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 3, image=False, start=datetime.now(UTC) - timedelta(hours=1))
    path = layout.calendar_path("ava", "2026-12")

    def arrange(calendar: Calendar) -> None:
        calendar.slots[1].scheduled_at = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
        calendar.slots[2].scheduled_at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        calendar.slots[2].status = "drafted"  # approved only after the first watcher stopped

    update_calendar(path, arrange)
    add_account(layout, "mastodon", mastodon.base_url)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "persona_foundry", "publish", str(layout.root), "--watch"]

    def run_watcher(until_posted: int) -> str:
        watcher = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        try:
            _wait_for(lambda: sum(s.status == "posted" for s in slots(layout)) == until_posted)
        finally:
            watcher.send_signal(signal.SIGTERM)
            _, err = watcher.communicate(timeout=60)
        assert watcher.returncode == 0, err.decode()[-2000:]
        return err.decode()

    first = run_watcher(2)  # the one due now, then the one due 3 s later, after a sleep
    update_calendar(path, lambda calendar: calendar.move_slots(["s02"], "approve"))
    second = run_watcher(3)  # a restarted watcher takes up from the files

    assert "publisher stopped" in first and "publisher stopped" in second
    assert len(statuses(mastodon)) == 3


def test_the_watcher_sleeps_until_the_next_due_slot_at_most_five_minutes() -> None:
    from persona_foundry.publish.watch import MAX_WATCH_SLEEP_S, sleep_s
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert sleep_s(datetime(2026, 12, 1, 9, 0, 30, tzinfo=ZONE), now) == 30.0
    assert sleep_s(now + timedelta(days=1), now) == MAX_WATCH_SLEEP_S
    assert sleep_s(None, now) == MAX_WATCH_SLEEP_S
    assert sleep_s(now - timedelta(hours=1), now) == 0.0


def test_a_missing_secret_names_where_it_should_be_and_sends_nothing(
        mastodon: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PF_TEST_MASTODON_ACCESS_TOKEN")
    layout = make_folder(tmp_path, 1, image=False)
    add_account(layout, "mastodon", mastodon.base_url)

    summary = publish(layout)

    assert summary.exit_code == 1 and "PF_TEST_MASTODON_ACCESS_TOKEN" in summary.problems[0]
    assert statuses(mastodon) == [] and slots(layout)[0].status == "approved"


def test_a_refused_token_sends_nothing_and_leaves_the_slots_approved(
        mastodon: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_TEST_MASTODON_ACCESS_TOKEN", "not-the-token")
    layout = make_folder(tmp_path, 2, image=False)
    add_account(layout, "mastodon", mastodon.base_url)

    summary = publish(layout)

    assert [o.status for o in summary.outcomes] == ["deferred"]  # the second is not tried
    assert [slot.status for slot in slots(layout)] == ["approved", "approved"]
    assert "stopped for this run" in summary.problems[0] and summary.exit_code == 1


def test_a_post_the_platform_scheduled_gets_its_live_url_once_it_is_out(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 1, image=False)
    add_account(layout, "mastodon", mastodon.base_url)

    def handed_to_the_scheduler(calendar: Calendar) -> None:
        slot = calendar.slots[0]
        slot.status = "posted"
        slot.publish = PublishRecord(platform="mastodon", post_id="sched-1", scheduled=True)

    update_calendar(layout.calendar_path("ava", "2026-12"), handed_to_the_scheduler)
    api = Mastodon(access_token=MASTODON_TOKEN, api_base_url=mastodon.base_url)
    live = api.status_post(slots(layout)[0].text)  # what the server did at the slot's time

    publish(layout)

    record = slots(layout)[0].publish
    assert record is not None and not record.scheduled
    assert (record.post_id, record.url) == (str(live["id"]), live["url"])
    assert read_tweet_file(layout.tweet_paths()[0]).tweets[0].posted_url == live["url"]
