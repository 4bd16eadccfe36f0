"""The store: the slot state machine, the versioned locked update, the tweet file, the layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona_foundry.errors import InputError
from persona_foundry.files import pretty_json
from persona_foundry.store import (
    MOVES,
    SLOT_STATUSES,
    Calendar,
    OutputLayout,
    Slot,
    SlotMoveError,
    StaleVersionError,
    TweetFile,
    TweetRecord,
    claim_tweet_file,
    next_status,
    read_calendar_versioned,
    read_tweet_file,
    read_tweet_files,
    save_tweet_file,
    update_calendar,
    zone_named,
)


def _calendar(path: Path) -> Path:
    slots = [Slot(id=f"2026120{day}-0900", scheduled_at=f"2026-12-0{day}T09:00:00+00:00",
                  pillar="work", theme="t") for day in range(1, 4)]
    calendar = Calendar(persona="Ava", persona_key="ava", month="2026-12", timezone="UTC",
                        themes=["t"], events=[], slots=slots, created_at="x", updated_at="x")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pretty_json(calendar.model_dump(mode="json")))
    return path


def test_every_move_targets_and_starts_from_known_statuses() -> None:
    for move in MOVES.values():
        assert move.target in SLOT_STATUSES
        assert move.sources <= set(SLOT_STATUSES)


def test_the_lifecycle_runs_from_planned_to_posted_and_refuses_shortcuts() -> None:
    status = "planned"
    for move in ("draft", "approve", "start_publish", "confirm"):
        status = next_status(status, move)  # type: ignore[arg-type]
    assert status == "posted"
    with pytest.raises(SlotMoveError, match="is planned, cannot become publishing"):
        next_status("planned", "start_publish")
    assert next_status("approved", "edit") == "drafted"  # an edited post needs approving again
    with pytest.raises(SlotMoveError):
        next_status("skipped", "approve")


def test_moves_report_the_slots_they_could_not_move(tmp_path: Path) -> None:
    path = _calendar(tmp_path / "calendars" / "ava_2026-12.json")
    problems = update_calendar(path, lambda c: c.move_slots(
        ["20261201-0900", "nope"], "skip"))
    assert problems == ["nope: no such slot in 2026-12"]
    assert read_calendar_versioned(path)[0].slot("20261201-0900").status == "skipped"


def test_a_write_from_a_stale_read_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    path = _calendar(tmp_path / "calendars" / "ava_2026-12.json")
    _, version = read_calendar_versioned(path)
    update_calendar(path, lambda c: c.move_slots(["20261202-0900"], "skip"))
    before = path.read_bytes()
    with pytest.raises(StaleVersionError) as caught:
        update_calendar(path, lambda c: c.move_slots(["20261203-0900"], "skip"),
                        expected_version=version)
    assert path.read_bytes() == before
    assert caught.value.current == read_calendar_versioned(path)[1]


def test_a_tweet_file_keeps_unknown_keys_and_reads_empty_claims_as_no_file(
        tmp_path: Path) -> None:
    path = claim_tweet_file(tmp_path / "tweets", "ava")
    with pytest.raises(InputError, match="empty"):
        read_tweet_file(path)
    initial = TweetFile(persona="Ava", persona_key="ava", month="2026-12")
    record = TweetRecord(id="a", slot_id="a", scheduled_at="2026-12-01T09:00:00+00:00",
                         text="hello", future_key=1)  # type: ignore[call-arg]
    save_tweet_file(path, lambda f: f.tweets.append(record), initial=initial)
    found, problems = read_tweet_files([path, claim_tweet_file(tmp_path / "tweets", "ava")])
    assert problems == []
    assert found[0][1].record("a").model_dump()["future_key"] == 1


def test_the_layout_finds_the_output_folder_of_any_file_in_it(tmp_path: Path) -> None:
    out = OutputLayout(tmp_path / "out")
    assert OutputLayout.of_file(out.calendar_path("ava", "2026-12")).root == out.root.resolve()
    assert OutputLayout.of_file(out.images_for("ava") / "x.png").root == out.root.resolve()
    assert not out.contains(out.root / ".." / "elsewhere")


def test_a_time_zone_this_machine_does_not_know_reads_as_utc_wherever_it_is_read() -> None:
    # Slot times are made and published by the same rule: an unknown zone is UTC for both.
    assert zone_named("Europe/Madrid").key == "Europe/Madrid"
    assert zone_named("Mars/Olympus_Mons").key == "UTC"
    assert zone_named("../../etc/passwd").key == "UTC"
