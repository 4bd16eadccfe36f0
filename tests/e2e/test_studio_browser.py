"""The studio in real headless Chromium (Debian's, driven by Playwright) on a real run.

Each test serves its own copy of the run (tests/studio_run.py) with uvicorn and checks what a
user sees and what lands in the files. The gallery, calendar and post editor tests also take
the README's screenshots (docs/screenshots/).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Dialog, Page, expect

from openai_server import FakeOpenAIServer
from persona_foundry.store import read_calendar, read_tweet_file
from persona_foundry.textchecks import weighted_length
from studio_live import LiveStudio, screenshot, serving
from studio_run import HOSTILE, StudioRun, make_hostile, settings_for

TRICKY = [
    "plain ascii text", "日本語のテキストと한국어", "😷 👩‍👩‍👧‍👦 🇯🇵 👍🏽 1️⃣ ❤️",
    "e\u0301cole cafe\u0301", "see https://example.com/path?q=1&x=(a) and example.org.",
    "(http://x.co/a) t.co/abc", "https://t.co/abcdef123 more", "日本語.jp と https://日本語.jp/パス",
    "a@b.com #tag @user", "line\r\nbreak\rx", "go to my-site.co.uk/page#frag!",
    "🧑🏻‍🤝‍🧑🏼" * 30, "x" * 300,
]


def slot_of(run: StudioRun, key: str, slot_id: str) -> tuple[str, str]:
    """A slot's status and time as the calendar file has them."""
    slot = read_calendar(run.layout.calendar_path(key, run.month)).slot(slot_id)
    return slot.status, slot.scheduled_at


def record_text(run: StudioRun, key: str, slot_id: str) -> str:
    """The slot's post as its tweet file has it."""
    slot = read_calendar(run.layout.calendar_path(key, run.month)).slot(slot_id)
    return read_tweet_file(Path(slot.tweet_file or "")).record(slot_id).text


def editor(studio: LiveStudio, key: str, slot_id: str) -> str:
    """The post editor's address."""
    return f"{studio.url}/post/{key}/{studio.run.month}/{slot_id}"


def test_gallery_and_calendar_of_a_real_run(live_studio: LiveStudio, page: Page) -> None:
    run = live_studio.run
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(live_studio.url + "/")
    cards = page.get_by_test_id("persona-card")
    expect(cards).to_have_count(len(run.keys))
    screenshot(page, "gallery")
    cards.first.click()
    expect(page).to_have_url(re.compile(rf"/persona/{run.keys[0]}$"))
    expect(page.locator("svg.chart")).to_be_visible()  # the pillar mix

    key = run.keys[2]
    page.goto(f"{live_studio.url}/calendar?persona={key}&month={run.month}")
    calendar = read_calendar(run.layout.calendar_path(key, run.month))
    slots = page.get_by_test_id("slot")
    expect(slots).to_have_count(len(calendar.slots))
    first = calendar.slots[0]
    shown = page.locator(f'[data-testid="slot"][data-slot-id="{first.id}"]')
    expect(shown).to_have_attribute("data-status", first.status)
    screenshot(page, "calendar")
    page.goto(f"{live_studio.url}/post/{key}/{run.month}/{run.drafted(key)[0]}")
    expect(page.get_by_test_id("char-count")).to_be_visible()
    outside = [url for url in fetched if not url.startswith(live_studio.url + "/")]
    assert not outside, outside  # every script, style and image ships with the studio


def test_an_over_long_post_shows_the_count_and_is_refused(live_studio: LiveStudio,
                                                          page: Page) -> None:
    run, key = live_studio.run, live_studio.run.keys[0]
    slot_id = run.drafted(key)[0]
    before = record_text(run, key, slot_id)
    page.goto(editor(live_studio, key, slot_id))
    # 311 characters weighing 288: the URL counts 23, not its 46 (the agreement on CJK and emoji
    # is tested below; the machine's fonts draw no CJK glyphs for the screenshot).
    text = ("Sunday market run before the rain: " + "fresh bread, figs, " * 11
            + "and the last peaches https://example.com/market/sunday-morning-haul")
    page.get_by_test_id("post-text").fill(text)
    counter = page.get_by_test_id("char-count")
    expect(counter).to_have_text(f"{weighted_length(text)} / 280")
    expect(counter).to_have_class(re.compile("over"))
    expect(page.get_by_test_id("check-problems")).to_contain_text("too long")  # live check
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("message")).to_contain_text("Not saved")
    expect(page.get_by_test_id("check-problems")).to_contain_text(
        f"too long: weighted length {weighted_length(text)} > 280")
    screenshot(page, "post-editor")
    assert record_text(run, key, slot_id) == before


def test_approving_three_posts_lands_in_the_calendar_file(live_studio: LiveStudio,
                                                          page: Page) -> None:
    run, key = live_studio.run, live_studio.run.keys[1]
    chosen = run.drafted(key)[:3]
    for slot_id in chosen:
        page.goto(editor(live_studio, key, slot_id))
        page.get_by_test_id("approve").click()
        expect(page.get_by_test_id("post-status")).to_have_text("approved")
    assert [slot_of(run, key, slot_id)[0] for slot_id in chosen] == ["approved"] * 3
    page.goto(f"{live_studio.url}/calendar?persona={key}&month={run.month}&view=list")
    for slot_id in chosen:
        expect(page.locator(f'[data-testid="slot"][data-slot-id="{slot_id}"]')) \
            .to_have_attribute("data-status", "approved")


def test_a_script_in_a_bio_or_post_renders_as_text(live_studio: LiveStudio, page: Page) -> None:
    run, key = live_studio.run, live_studio.run.keys[0]
    slot_id = run.drafted(key)[0]
    make_hostile(run, key, slot_id)
    dialogs: list[str] = []

    def record_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record_dialog)
    page.goto(live_studio.url + "/")
    expect(page.locator(f'[data-persona="{key}"] .bio')).to_have_text(HOSTILE)
    page.goto(f"{live_studio.url}/persona/{key}")
    expect(page.get_by_test_id("card-description")).to_have_value(HOSTILE)
    page.goto(f"{live_studio.url}/calendar?persona={key}&month={run.month}&view=list")
    expect(page.locator(f'[data-slot-id="{slot_id}"] .preview')).to_have_text(HOSTILE)
    page.goto(editor(live_studio, key, slot_id))
    expect(page.get_by_test_id("post-text")).to_have_value(HOSTILE)
    assert page.locator("script:not([src])").count() == 0
    assert not dialogs


def test_two_tabs_editing_one_post_get_a_conflict(live_studio: LiveStudio, page: Page) -> None:
    run, key = live_studio.run, live_studio.run.keys[0]
    slot_id = run.drafted(key)[1]
    other = page.context.new_page()
    page.goto(editor(live_studio, key, slot_id))
    other.goto(editor(live_studio, key, slot_id))
    page.get_by_test_id("post-text").fill("First tab: the bakery queue was worth it today.")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("message")).to_have_text("Saved.")
    other.get_by_test_id("post-text").fill("Second tab: a different thought on the same slot.")
    other.get_by_test_id("save").click()
    expect(other.get_by_test_id("message")).to_contain_text("changed elsewhere")
    expect(other.get_by_test_id("conflict-current")).to_have_text(
        "First tab: the bakery queue was worth it today.")
    assert record_text(run, key, slot_id) == "First tab: the bakery queue was worth it today."


def test_a_slot_dragged_to_another_day_moves_there(live_studio: LiveStudio, page: Page) -> None:
    run, key = live_studio.run, live_studio.run.keys[2]
    calendar = read_calendar(run.layout.calendar_path(key, run.month))
    slot = calendar.slot(run.drafted(key)[0])
    taken = {other.scheduled_at[:16] for other in calendar.slots}
    hhmm = slot.scheduled_at[11:16]
    day = next(f"{run.month}-{number:02d}" for number in range(2, 8)
               if f"{run.month}-{number:02d}" != slot.scheduled_at[:10]
               and f"{run.month}-{number:02d}T{hhmm}" not in taken)
    page.set_viewport_size({"width": 1600, "height": 2400})
    page.goto(f"{live_studio.url}/calendar?persona={key}&month={run.month}&view=week&week=1")
    if not page.locator(f'[data-slot-id="{slot.id}"]').count():  # the slot is in week 1
        page.goto(f"{live_studio.url}/calendar?persona={key}&month={run.month}&view=week")
    page.locator(f'[data-testid="slot"][data-slot-id="{slot.id}"]').drag_to(
        page.locator(f'td[data-day="{day}"] .day-number'))
    expect(page.locator("#flash")).to_contain_text(f"Moved {slot.id}")
    expect(page.locator(f'td[data-day="{day}"] [data-slot-id="{slot.id}"]')).to_have_count(1)
    assert slot_of(run, key, slot.id)[1].startswith(f"{day}T{hhmm}")


def test_the_browser_counter_agrees_with_the_server(live_studio: LiveStudio,
                                                    page: Page) -> None:
    run, key = live_studio.run, live_studio.run.keys[0]
    page.goto(editor(live_studio, key, run.drafted(key)[0]))
    counted = page.evaluate("(texts) => texts.map((t) => window.pfWeightedLength(t))",
                            TRICKY)
    assert counted == [weighted_length(text) for text in TRICKY], json.dumps(
        list(zip(TRICKY, counted, strict=True)), ensure_ascii=False)


def test_keyboard_shortcuts_move_between_slots_and_approve(live_studio: LiveStudio,
                                                           page: Page) -> None:
    run, key = live_studio.run, live_studio.run.keys[1]
    page.goto(f"{live_studio.url}/calendar?persona={key}&month={run.month}&view=list"
              "&status=drafted")
    first, second = run.drafted(key)[:2]
    page.locator(f'[data-testid="slot"][data-slot-id="{first}"]').focus()
    page.keyboard.press("j")  # to the next slot
    focused = page.locator(f'[data-testid="slot"][data-slot-id="{second}"]')
    expect(focused).to_be_focused()
    page.keyboard.press("a")
    expect(focused).to_have_attribute("data-status", "approved")
    page.keyboard.press("s")  # an approved post can still be skipped
    expect(focused).to_have_attribute("data-status", "skipped")
    assert slot_of(run, key, second)[0] == "skipped"
    assert slot_of(run, key, first)[0] == "drafted"


def test_generate_shows_live_progress_and_the_new_posts(
        studio_copy: StudioRun, schema_server: FakeOpenAIServer, page: Page) -> None:
    key = studio_copy.keys[2]
    drafted = len(studio_copy.drafted(key))
    with serving(studio_copy, settings_for(schema_server)) as live:
        page.goto(f"{live.url}/generate?persona={key}")
        page.get_by_test_id("generate-month").fill(studio_copy.month)
        page.get_by_test_id("generate-count").fill("6")
        page.get_by_test_id("generate").click()
        job = page.get_by_test_id("job")
        expect(job).to_have_attribute("data-state", "done", timeout=60_000)
        expect(page.get_by_test_id("job-progress")).to_have_attribute("value", "6")
        expect(page.locator(".job-posts li")).to_have_count(drafted + 6)
    assert len(studio_copy.drafted(key)) == drafted + 6
