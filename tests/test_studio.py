"""The studio's routes without a browser (Starlette's TestClient), on a real run's output folder.

The run is made once per session by the CLI against the schema-following server
(tests/studio_run.py); each test edits its own copy.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from openai_server import FakeOpenAIServer
from persona_foundry.cards.exchange import EXPORT_FORMATS
from persona_foundry.cli import app as cli_app
from persona_foundry.settings import Settings
from persona_foundry.store import (
    PublishRecord,
    read_calendar,
    read_card_json_versioned,
    read_tweet_file,
    update_calendar,
    update_card_json,
    update_tweet_file,
)
from persona_foundry.store.tweet_file import ImageFacts
from persona_foundry.studio.app import StudioConfig, create_app
from persona_foundry.studio.cli import studio_token, studio_url
from persona_foundry.studio.security import host_names
from persona_foundry.studio.xlength import DATA_FILE, javascript_source
from persona_foundry.tweets import STAGE_NAME as POSTS_STAGE
from studio_run import (
    StudioRun,
    env,
    make_hostile,
    settings_for,
    studio_copy,
    studio_source,
)

__all__ = ["studio_copy", "studio_source"]  # fixtures, used by name
HOSTS = frozenset({"testserver"})
JOB_TIMEOUT_S = 60.0


class Tab:
    """A browser tab's worth of requests: the page's CSRF token on every change."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = client.app.state.studio.guard.csrf  # type: ignore[attr-defined]

    def get(self, url: str) -> httpx.Response:
        """GET, expecting a page."""
        return self.client.get(url)

    def post(self, url: str, data: dict[str, Any], *, htmx: bool = True,
             **headers: str) -> httpx.Response:
        """POST as the studio's pages do (the CSRF header htmx sends)."""
        sent = {"X-CSRF-Token": self.csrf, **({"HX-Request": "true"} if htmx else {}), **headers}
        return self.client.post(url, data=data, headers=sent, follow_redirects=False)


def make_client(run: StudioRun, settings: Settings | None = None, token: str | None = None,
                hosts: frozenset[str] | None = HOSTS) -> TestClient:
    """A TestClient of the studio on `run`."""
    config = StudioConfig(run.out, settings or Settings(_env_file=None),  # type: ignore[call-arg]
                          hosts, token)
    return TestClient(create_app(config), base_url="http://testserver")


@pytest.fixture
def tab(studio_copy: StudioRun) -> Iterator[Tab]:
    """The studio on this test's copy of the run."""
    with make_client(studio_copy) as client:
        yield Tab(client)


def version_in(page: str) -> str:
    """The post version an editor page holds."""
    found = re.search(r'name="version" value="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def editor_url(run: StudioRun, key: str, slot_id: str) -> str:
    """The post editor's address."""
    return f"/post/{key}/{run.month}/{slot_id}"


def slot_status(run: StudioRun, key: str, slot_id: str) -> str:
    """A slot's status as the calendar file has it."""
    return read_calendar(run.layout.calendar_path(key, run.month)).slot(slot_id).status


def record_text(run: StudioRun, key: str, slot_id: str) -> str:
    """The text of the slot's post as its tweet file has it."""
    calendar = read_calendar(run.layout.calendar_path(key, run.month))
    tweet_file = calendar.slot(slot_id).tweet_file
    assert tweet_file
    return read_tweet_file(Path(tweet_file)).record(slot_id).text


def test_every_page_shows_the_run(tab: Tab, studio_copy: StudioRun) -> None:
    run = studio_copy
    gallery = tab.get("/").text
    assert gallery.count('data-testid="persona-card"') == len(run.keys)
    for key in run.keys:
        assert f'href="/persona/{key}"' in gallery
    assert "<svg class=\"graph\"" in gallery  # the batch's social graph

    key = run.keys[0]
    persona = tab.get(f"/persona/{key}").text
    for section in ("core", "strategy", "example_tweets", "social", "authenticity", "visual",
                    "lorebook", "Pillar mix"):
        assert f"<h2>{section}</h2>" in persona
    assert 'class="chart"' in persona

    calendar = read_calendar(run.layout.calendar_path(key, run.month))
    for view in ("month", "week", "list"):
        page = tab.get(f"/calendar?persona={key}&month={run.month}&view={view}").text
        ids = re.findall(r'data-testid="slot" data-slot-id="([^"]+)" data-status="(\w+)"', page)
        if view != "week":
            assert sorted(ids) == sorted((slot.id, slot.status) for slot in calendar.slots)
    everyone = tab.get(f"/calendar?month={run.month}").text
    assert everyone.count('data-testid="slot"') == sum(
        len(read_calendar(run.layout.calendar_path(k, run.month)).slots) for k in run.keys)
    drafted = tab.get(f"/calendar?month={run.month}&status=drafted&persona={key}").text
    assert 'data-status="planned"' not in drafted
    assert tab.get("/usage?by=stage").status_code == 200
    assert "<td>tweets</td>" in tab.get("/usage?by=stage").text
    assert tab.get("/generate").status_code == 200


def test_post_editor_shows_the_post_and_its_hooks(tab: Tab, studio_copy: StudioRun) -> None:
    key = studio_copy.keys[0]
    slot_id = studio_copy.drafted(key)[0]
    page = tab.get(editor_url(studio_copy, key, slot_id)).text
    for hook in ("post-text", "char-count", "save", "approve", "skip", "regenerate",
                 "check-problems"):
        assert f'data-testid="{hook}"' in page
    assert record_text(studio_copy, key, slot_id).split()[0] in page


def test_model_and_user_text_is_escaped(tab: Tab, studio_copy: StudioRun) -> None:
    run, key = studio_copy, studio_copy.keys[0]
    slot_id = run.drafted(key)[0]
    make_hostile(run, key, slot_id)
    pages = ["/", f"/persona/{key}", f"/calendar?persona={key}&month={run.month}",
             editor_url(run, key, slot_id)]
    for url in pages:
        page = tab.get(url).text
        assert "<script>alert(1)" not in page, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, url


def test_changes_need_the_csrf_token(tab: Tab, studio_copy: StudioRun) -> None:
    key = studio_copy.keys[0]
    slot_id = studio_copy.drafted(key)[0]
    url = f"{editor_url(studio_copy, key, slot_id)}/approve"
    assert tab.client.post(url, data={}).status_code == 403
    assert tab.client.post(url, data={"csrf": "forged"}).status_code == 403
    foreign = {"X-CSRF-Token": tab.csrf, "Origin": "http://evil.example"}
    assert tab.client.post(url, data={}, headers=foreign).status_code == 403
    blank = {"X-CSRF-Token": tab.csrf, "Origin": "null"}
    assert tab.client.post(url, data={}, headers=blank).status_code == 403
    # So the browser names the studio as the Origin of its own form posts (not "null").
    assert tab.get("/").headers["referrer-policy"] == "same-origin"
    assert slot_status(studio_copy, key, slot_id) == "drafted"
    assert tab.client.post(url, data={"csrf": tab.csrf}).status_code == 200  # a plain form
    assert slot_status(studio_copy, key, slot_id) == "approved"


def test_off_loopback_every_request_needs_the_token(studio_copy: StudioRun) -> None:
    assert studio_token("127.0.0.1", None) == (None, False)
    generated, was_generated = studio_token("0.0.0.0", None)
    assert generated and was_generated
    assert studio_url("0.0.0.0", 8765, "t0k") == "http://0.0.0.0:8765/?token=t0k"
    with make_client(studio_copy, token="s3cret") as client:
        assert client.get("/").status_code == 401
        assert client.get("/static/studio.css").status_code == 401
        assert client.get("/?token=wrong").status_code == 401
        traded = client.get("/calendar?token=s3cret", follow_redirects=False)
        assert traded.status_code == 303 and "token" not in traded.headers["location"]
        assert client.get("/").status_code == 200  # the cookie now
    with make_client(studio_copy, token="s3cret") as client:
        assert client.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert host_names("0.0.0.0", 8765) is None  # reached by any name: the token guards it
    with make_client(studio_copy, token="s3cret", hosts=None) as client:
        bearer = {"Authorization": "Bearer s3cret", "Host": "studio.lan:8765"}
        assert client.get("/", headers=bearer).status_code == 200
        csrf = client.app.state.studio.guard.csrf  # type: ignore[attr-defined]
        key = studio_copy.keys[0]
        url = f"/post/{key}/{studio_copy.month}/{studio_copy.drafted(key)[0]}/approve"
        elsewhere = {**bearer, "X-CSRF-Token": csrf, "Origin": "http://other.lan:8765"}
        assert client.post(url, headers=elsewhere).status_code == 403
        same = {**bearer, "X-CSRF-Token": csrf, "Origin": "http://studio.lan:8765"}
        assert client.post(url, headers=same).status_code == 200


def test_unknown_host_names_and_huge_bodies_are_refused(tab: Tab) -> None:
    assert tab.client.get("/", headers={"Host": "evil.example"}).status_code == 400
    huge = tab.post("/slots/bulk", {"action": "approve", "note": "x" * 1_100_000}, htmx=False)
    assert huge.status_code == 413


@pytest.mark.parametrize("trick", [
    "../outside.png", "%2e%2e/outside.png", "..%2foutside.png", "personas/../../outside.png",
    "%2Ftmp%2Foutside.png", "/etc/passwd", "personas/%2e%2e/%2e%2e/outside.png",
    "personas/link.png", "personas/ava_persona.json", "ledger.db", "personas\\..\\..\\x.png",
])
def test_no_route_serves_a_file_outside_the_folder(tab: Tab, studio_copy: StudioRun,
                                                   trick: str) -> None:
    outside = studio_copy.out.parent / "outside.png"
    outside.write_bytes(b"\x89PNG secret")
    (studio_copy.out / "personas" / "link.png").symlink_to(outside)
    answer = tab.client.get(f"/files/{trick}")
    assert answer.status_code in (404, 400), trick
    assert b"secret" not in answer.content


def test_the_portrait_is_served(tab: Tab, studio_copy: StudioRun) -> None:
    key = studio_copy.keys[0]
    answer = tab.get(f"/files/personas/{key}_persona.png")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert f'src="/files/personas/{key}_persona.png"' in tab.get("/").text


def test_an_over_long_post_is_refused(tab: Tab, studio_copy: StudioRun) -> None:
    key = studio_copy.keys[0]
    slot_id = studio_copy.drafted(key)[0]
    before = record_text(studio_copy, key, slot_id)
    url = editor_url(studio_copy, key, slot_id)
    version = version_in(tab.get(url).text)
    answer = tab.post(f"{url}/save", {"text": "word " * 60, "version": version})
    assert answer.status_code == 422
    assert "too long: weighted length 300 &gt; 280" in answer.text
    assert 'data-testid="char-count" class="char-count over"' in answer.text
    assert record_text(studio_copy, key, slot_id) == before


def test_two_tabs_editing_one_post_conflict(tab: Tab, studio_copy: StudioRun) -> None:
    key = studio_copy.keys[0]
    slot_id = studio_copy.drafted(key)[0]
    url = editor_url(studio_copy, key, slot_id)
    first, second = version_in(tab.get(url).text), version_in(tab.get(url).text)
    saved = tab.post(f"{url}/save", {"text": "Morning run by the harbour, legs still asleep.",
                                     "version": first})
    assert saved.status_code == 200
    late = tab.post(f"{url}/save", {"text": "A completely different evening thought here.",
                                    "version": second})
    assert late.status_code == 409
    assert "Morning run by the harbour, legs still asleep." in late.text  # the current text
    assert record_text(studio_copy, key, slot_id).startswith("Morning run by the harbour")


def test_approve_skip_and_edit_follow_the_slot_lifecycle(tab: Tab, studio_copy: StudioRun) -> None:
    run, key = studio_copy, studio_copy.keys[0]
    first, second, third = run.drafted(key)[:3]
    url = editor_url(run, key, first)
    approved = tab.post(f"{url}/approve", {"version": version_in(tab.get(url).text)})
    assert approved.status_code == 200 and slot_status(run, key, first) == "approved"
    edited = tab.post(f"{url}/save", {"text": "Rewrote it after approving: new words, new day.",
                                      "version": version_in(approved.text)})
    assert edited.status_code == 200
    assert slot_status(run, key, first) == "drafted"  # an edited approved post needs approving
    refs = [f"{key}|{run.month}|{slot}" for slot in (second, third)]
    bulk = tab.post("/slots/bulk", {"action": "skip", "ids": refs, "note": "off-brand"},
                    htmx=False, Accept="application/json")
    assert bulk.json()["statuses"] == {ref: "skipped" for ref in refs}
    calendar = read_calendar(run.layout.calendar_path(key, run.month))
    assert calendar.slot(second).note == "off-brand"
    again = tab.post("/slots/bulk", {"action": "approve", "ids": refs[0]}, htmx=False,
                     Accept="application/json")
    assert "cannot become approved" in again.json()["problems"][0]


def test_a_slot_moves_to_another_day_but_never_onto_a_taken_minute(
        tab: Tab, studio_copy: StudioRun) -> None:
    run, key = studio_copy, studio_copy.keys[0]
    calendar = read_calendar(run.layout.calendar_path(key, run.month))
    slot, other = calendar.slot(run.drafted(key)[0]), calendar.slots[-1]
    taken = {s.scheduled_at[:16] for s in calendar.slots}
    hhmm = slot.scheduled_at[11:16]
    day = next(f"{run.month}-{number:02d}" for number in range(28, 1, -1)
               if f"{run.month}-{number:02d}T{hhmm}" not in taken)
    form = {"persona": key, "month": run.month, "slot": slot.id, "day": day,
            "time": slot.scheduled_at[11:16]}
    moved = tab.post("/slots/move", form, htmx=False)
    assert moved.status_code == 200 and moved.json()["scheduled_at"].startswith(day)
    assert read_calendar(run.layout.calendar_path(key, run.month)).slot(slot.id) \
        .scheduled_at.startswith(day)
    tweet_file = read_tweet_file(Path(slot.tweet_file or ""))
    assert tweet_file.record(slot.id).scheduled_at.startswith(day)
    clash = {**form, "day": other.scheduled_at[:10], "time": other.scheduled_at[11:16]}
    refused = tab.post("/slots/move", clash, htmx=False)
    assert refused.status_code == 409 and "not two slots in one minute" in refused.json()["error"]
    outside = tab.post("/slots/move", {**form, "day": "2027-01-03"}, htmx=False)
    assert outside.status_code == 409


def test_card_edits_keep_unknown_keys_and_refuse_stale_versions(
        tab: Tab, studio_copy: StudioRun) -> None:
    key = studio_copy.keys[0]
    path = studio_copy.layout.card_path(key)

    def add_foreign(card: dict[str, Any]) -> None:
        card["data"]["extensions"]["other_tool"] = {"keep": [1, 2]}
        card["data"]["extensions"]["persona_foundry"]["future_key"] = "kept"

    update_card_json(path, add_foreign)
    page = tab.get(f"/persona/{key}").text
    version = version_in(page)
    saved = tab.post(f"/persona/{key}/card", {"name": "Renamed Person", "tags": "a, b",
                                              "version": version}, htmx=False)
    assert saved.status_code == 303
    card, _ = read_card_json_versioned(path)
    assert card["data"]["name"] == "Renamed Person" and card["data"]["tags"] == ["a", "b"]
    assert card["data"]["extensions"]["other_tool"] == {"keep": [1, 2]}
    assert card["data"]["extensions"]["persona_foundry"]["future_key"] == "kept"
    stale = tab.post(f"/persona/{key}/card", {"name": "Lost", "version": version}, htmx=False)
    assert stale.status_code == 409 and "Renamed Person" in stale.text


def test_every_export_format_downloads(tab: Tab, studio_copy: StudioRun) -> None:
    key = studio_copy.keys[0]
    for fmt in EXPORT_FORMATS:
        answer = tab.get(f"/persona/{key}/export/{fmt}")
        assert answer.status_code == 200 and answer.content, fmt
        assert "attachment" in answer.headers["content-disposition"]
    assert tab.get(f"/persona/{key}/export/exe").status_code == 404


def test_the_cli_and_the_studio_at_once_lose_nothing(tab: Tab, studio_copy: StudioRun,
                                                     schema_server: FakeOpenAIServer) -> None:
    run, key = studio_copy, studio_copy.keys[0]
    mine, theirs = run.drafted(key)[:2]
    url = editor_url(run, key, mine)
    version = version_in(tab.get(url).text)
    card = run.layout.card_path(key)
    approve = ["calendar", str(card), "--month", run.month, "--out", str(run.out), "--approve"]
    result = CliRunner().invoke(cli_app, [*approve, theirs],
                                env=env(schema_server, run.out.parent / "cache"))
    assert result.exit_code == 0, result.output
    saved = tab.post(f"{url}/save", {"text": "Saved while the CLI approved another post.",
                                     "version": version})
    assert saved.status_code == 200  # another slot's change is no conflict
    assert slot_status(run, key, theirs) == "approved"
    assert record_text(run, key, mine) == "Saved while the CLI approved another post."
    version = version_in(saved.text)
    result = CliRunner().invoke(cli_app, [*approve, mine],
                                env=env(schema_server, run.out.parent / "cache"))
    assert result.exit_code == 0, result.output
    late = tab.post(f"{url}/save", {"text": "This would undo the CLI's approval.",
                                    "version": version})
    assert late.status_code == 409 and slot_status(run, key, mine) == "approved"


def test_regenerate_is_one_checked_call(studio_copy: StudioRun,
                                        schema_server: FakeOpenAIServer) -> None:
    run, key = studio_copy, studio_copy.keys[0]
    slot_id = run.drafted(key)[0]
    before = record_text(run, key, slot_id)
    with make_client(run, settings_for(schema_server)) as client:
        tab = Tab(client)
        url = editor_url(run, key, slot_id)
        calls = len(schema_server.chat_requests(POSTS_STAGE))
        answer = tab.post(f"{url}/regenerate", {"note": "more about the weekend",
                                                "version": version_in(tab.get(url).text)})
    requests = schema_server.chat_requests(POSTS_STAGE)[calls:]
    assert len(requests) == 1
    assert "more about the weekend" in requests[0].text
    if answer.status_code == 200:
        assert record_text(run, key, slot_id) != before
        assert slot_status(run, key, slot_id) == "drafted"
    else:  # the new draft failed a check: shown with its problems, nothing written
        assert answer.status_code == 422 and 'data-testid="check-problems"' in answer.text
        assert record_text(run, key, slot_id) == before


def wait_for_job(tab: Tab, location: str) -> str:
    """Poll a job page until the job ended; its last page."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        page = tab.get(location).text
        if 'data-state="running"' not in page:
            return page
        time.sleep(0.2)
    raise AssertionError(f"job {location} still running after {JOB_TIMEOUT_S} s")


def test_generate_fills_open_slots_with_progress(studio_copy: StudioRun,
                                                 schema_server: FakeOpenAIServer) -> None:
    run, key = studio_copy, studio_copy.keys[1]
    drafted = len(run.drafted(key))
    with make_client(run, settings_for(schema_server)) as client:
        tab = Tab(client)
        started = tab.post("/generate", {"persona": key, "month": run.month, "count": "5"},
                           htmx=False)
        assert started.status_code == 303
        page = wait_for_job(tab, started.headers["location"])
    assert 'data-state="done"' in page and "5 posts written" in page
    assert 'data-testid="job-progress" value="5" max="5"' in page
    assert len(run.drafted(key)) == drafted + 5


def test_retry_reruns_only_the_failed_stage(studio_copy: StudioRun,
                                            schema_server: FakeOpenAIServer) -> None:
    run, key = studio_copy, studio_copy.keys[2]
    path = run.layout.card_path(key)

    def fail_lorebook(card: dict[str, Any]) -> None:
        ours = card["data"]["extensions"]["persona_foundry"]
        ours["stages"]["lorebook"] = {"status": "failed", "error": "timed out (boom)"}
        ours.pop("lorebook", None)

    update_card_json(path, fail_lorebook)
    core_before = read_card_json_versioned(path)[0]["data"]["extensions"]["persona_foundry"][
        "core"]
    with make_client(run, settings_for(schema_server)) as client:
        tab = Tab(client)
        gallery = tab.get("/").text
        assert "timed out (boom)" in gallery and 'data-testid="retry"' in gallery
        calls = len(schema_server.chat_requests())
        started = tab.post(f"/persona/{key}/retry", {}, htmx=False)
        page = wait_for_job(tab, started.headers["location"])
    assert 'data-state="done"' in page, page
    # The run's ledger still holds the lorebook reply, so the retry may take it from there.
    stages = {request.schema_name for request in schema_server.chat_requests()[calls:]}
    assert stages <= {"lorebook"}
    card, _ = read_card_json_versioned(path)
    ours = card["data"]["extensions"]["persona_foundry"]
    assert ours["stages"]["lorebook"]["status"] == "ok" and ours["lorebook"]
    assert ours["core"] == core_before


def test_the_browser_counter_is_generated_from_the_server_patterns() -> None:
    assert DATA_FILE.read_text(encoding="utf-8") == javascript_source()


def test_near_duplicates_of_other_posts_are_refused_but_not_of_itself(
        tab: Tab, studio_copy: StudioRun) -> None:
    run, key = studio_copy, studio_copy.keys[0]
    mine, theirs = run.drafted(key)[:2]
    url = editor_url(run, key, mine)
    own, other = record_text(run, key, mine), record_text(run, key, theirs)
    copied = tab.post(f"{url}/save", {"text": other + " Again.",
                                      "version": version_in(tab.get(url).text)})
    assert copied.status_code == 422 and "too similar to an earlier post" in copied.text
    touched = tab.post(f"{url}/save", {"text": own + " Again.",
                                       "version": version_in(tab.get(url).text)})
    assert touched.status_code == 200, touched.text
    assert record_text(run, key, mine) == own + " Again."


def attach_image(run: StudioRun, key: str, slot_id: str, *, quarantined: bool) -> str:
    """Give the slot's post a rendered (or quarantined) image, as `images` records it."""
    folder = run.layout.images_for(key) / ("quarantine" if quarantined else "")
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / f"{slot_id}.png"
    image.write_bytes((run.out / "personas" / f"{key}_persona.png").read_bytes())
    calendar_path = run.layout.calendar_path(key, run.month)

    def record(tweets: Any) -> None:
        post = tweets.record(slot_id)
        post.image_path, post.image_prompt = str(image), "photo at the market, morning light"
        post.image_status = "quarantined" if quarantined else "done"
        post.image = ImageFacts(seed=4242, nsfw_score=0.91 if quarantined else 0.01)

    update_tweet_file(Path(read_calendar(calendar_path).slot(slot_id).tweet_file or ""), record)
    if not quarantined:
        update_calendar(calendar_path, lambda c: setattr(c.slot(slot_id), "image_path",
                                                         str(image)))
    return image.relative_to(run.out).as_posix()


def test_the_image_shows_large_with_its_seed_and_the_quarantine_apart(
        tab: Tab, studio_copy: StudioRun) -> None:
    run, key = studio_copy, studio_copy.keys[0]
    shown, hidden = run.drafted(key)[:2]
    done = attach_image(run, key, shown, quarantined=False)
    flagged = attach_image(run, key, hidden, quarantined=True)
    page = tab.get(editor_url(run, key, shown)).text
    assert f'src="/files/{done}" alt="the post\'s image" data-testid="post-image"' in page
    assert "seed 4242" in page and "photo at the market, morning light" in page
    assert 'data-testid="quarantine"' not in page
    page = tab.get(editor_url(run, key, hidden)).text
    assert 'data-testid="post-image"' not in page
    assert 'data-testid="quarantine"' in page and f'src="/files/{flagged}"' in page
    calendar = tab.get(f"/calendar?persona={key}&month={run.month}").text
    assert f'class="thumb" src="/files/{done}"' in calendar
    assert tab.get(f"/files/{done}").status_code == 200


def test_the_gallery_warns_of_duplicate_names(tab: Tab, studio_copy: StudioRun) -> None:
    first, second = studio_copy.keys[:2]
    name = read_card_json_versioned(studio_copy.layout.card_path(first))[0]["data"]["name"]

    def same_name(card: dict[str, Any]) -> None:
        card["data"]["name"] = name

    update_card_json(studio_copy.layout.card_path(second), same_name)
    gallery = tab.get("/").text
    assert 'data-testid="diversity-warnings"' in gallery
    assert f"duplicate name: {name.casefold()}" in gallery


def test_bulk_approve_from_the_calendar_form(tab: Tab, studio_copy: StudioRun) -> None:
    run = studio_copy
    refs = [f"{key}|{run.month}|{run.drafted(key)[0]}" for key in run.keys]
    back = f"/calendar?month={run.month}"
    answer = tab.client.post("/slots/bulk", data={"csrf": tab.csrf, "action": "approve",
                                                  "ids": refs, "back": back},
                             follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == back
    for ref in refs:
        key, _, slot_id = ref.split("|")
        assert slot_status(run, key, slot_id) == "approved"
    elsewhere = tab.client.post("/slots/bulk", data={"csrf": tab.csrf, "action": "skip",
                                                     "ids": refs[0], "back": "//evil.example"},
                                follow_redirects=False)
    assert elsewhere.headers["location"] == "/calendar"  # never a redirect off the studio


def test_a_posted_slot_links_its_post_and_no_longer_moves(tab: Tab,
                                                          studio_copy: StudioRun) -> None:
    run, key = studio_copy, studio_copy.keys[0]
    posted, forged = run.drafted(key)[:2]

    def publish(calendar: Any) -> None:
        for slot_id, url in ((posted, "https://social.example/@ava/1"),
                             (forged, "javascript:alert(1)")):
            slot = calendar.slot(slot_id)
            for move in ("approve", "start_publish", "confirm"):
                slot.apply(move)
            slot.publish = PublishRecord(platform="mastodon", url=url)

    update_calendar(run.layout.calendar_path(key, run.month), publish)
    page = tab.get(f"/calendar?persona={key}&month={run.month}&view=list").text
    assert page.count('data-testid="posted-link"') == 1
    assert 'href="https://social.example/@ava/1"' in page and "javascript:" not in page
    assert re.search(rf'data-slot-id="{posted}" data-status="posted" draggable="false"', page)
    refused = tab.post("/slots/move", {"persona": key, "month": run.month, "slot": posted,
                                       "day": f"{run.month}-15"}, htmx=False)
    assert refused.status_code == 409 and "can no longer move" in refused.json()["error"]


def test_skip_from_the_editor_keeps_the_note(tab: Tab, studio_copy: StudioRun) -> None:
    run, key = studio_copy, studio_copy.keys[0]
    slot_id = run.drafted(key)[0]
    url = editor_url(run, key, slot_id)
    skipped = tab.post(f"{url}/skip", {"note": "too close to the launch post",
                                       "version": version_in(tab.get(url).text)})
    assert skipped.status_code == 200 and "Skipped." in skipped.text
    slot = read_calendar(run.layout.calendar_path(key, run.month)).slot(slot_id)
    assert (slot.status, slot.note) == ("skipped", "too close to the launch post")


def test_the_studio_command_binds_loopback_and_demands_a_token_elsewhere(
        studio_copy: StudioRun, monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[dict[str, Any]] = []
    opened: list[str] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: served.append(kwargs))
    monkeypatch.setattr("webbrowser.open", opened.append)
    monkeypatch.setattr("persona_foundry.studio.cli.OPEN_DELAY_S", 0.0)
    out = str(studio_copy.out)
    local = CliRunner().invoke(cli_app, ["studio", "--out", out, "--open"])
    assert local.exit_code == 0, local.output
    assert served[-1] == {"host": "127.0.0.1", "port": 8765, "log_level": "warning"}
    assert "http://127.0.0.1:8765/" in local.output and "token" not in local.output
    time.sleep(0.2)
    assert opened == ["http://127.0.0.1:8765/"]
    remote = CliRunner().invoke(cli_app, ["studio", "--out", out, "--host", "0.0.0.0"])
    assert remote.exit_code == 0, remote.output
    token = re.search(r"\?token=([\w-]+)", remote.output)
    assert token and "shown once" in remote.output
    missing = CliRunner().invoke(cli_app, ["studio", "--out", str(studio_copy.out / "nope")])
    assert missing.exit_code == 2


def test_the_quality_page_shows_the_report_with_its_charts_and_escapes_posts(
        tab: Tab, studio_copy: StudioRun) -> None:
    run, key = studio_copy, studio_copy.keys[0]
    first, second = run.drafted(key)[:2]
    hostile = "<script>alert(1)</script> the market at dawn, figs and bread again today"

    def repeat(calendar: Any) -> None:  # a near-duplicate pair: listed among the worst posts
        for slot_id in (first, second):
            calendar.slot(slot_id).text = hostile

    update_calendar(run.layout.calendar_path(key, run.month), repeat)
    page = tab.get("/quality")
    assert page.status_code == 200
    assert 'data-testid="quality-report"' in page.text and "<svg" in page.text
    assert first in page.text or second in page.text  # the offender is named by its slot id
    assert "&lt;script&gt;alert(1)" in page.text and "<script>alert" not in page.text
