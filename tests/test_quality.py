"""`quality`: every measure on crafted posts, the judge on scripted replies, the CLI's files."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from browser import chromium_page
from conftest import server_settings
from openai_server import FakeOpenAIServer, Reply
from persona_foundry.cli import app
from persona_foundry.llm.session import LLMSession
from persona_foundry.quality import metrics
from persona_foundry.quality.judge import JUDGE_STAGE
from persona_foundry.quality.render import quality_html
from persona_foundry.quality.report import (
    QualityReport,
    collect_months,
    measure_month,
    quality_report,
)
from persona_foundry.quality.style import StyledPost, style_profile
from persona_foundry.stages.strategy import TweetStrategy
from persona_foundry.store import OutputLayout, update_calendar
from stage_replies import STRATEGY, content_reply, schema_name
from test_tweets import MONTH, SPANISH, env, make_cards

StartServer = Callable[..., FakeOpenAIServer]
VARIED = [
    "Thermals were generous today: two hours up there and not one engine minute.",
    "My sourdough starter is older than two of the interns. It has seniority.",
    "CO2 scrubber test passed again. Boring is the best result we can get.",
    "Rain grounded the glider, so I rewired the garage lamp instead.",
    "Reading an old mission report from 1969; the margins are full of jokes.",
    "Tried rye flour in the loaf. The crust sings when it cools, I swear.",
]
GREETING = "Good morning friends! Another beautiful day to chase the sky and learn something."
GREETING_AGAIN = "Good morning friends! Another lovely day to chase the sky and learn something."


def test_a_repeated_greeting_lowers_every_diversity_measure() -> None:
    varied = metrics.diversity_scores([*VARIED, GREETING])
    repeated = metrics.diversity_scores([*VARIED[:-1], GREETING, GREETING_AGAIN])
    assert repeated.self_bleu > varied.self_bleu
    assert repeated.distinct_2 < varied.distinct_2
    assert repeated.ngram_diversity < varied.ngram_diversity
    assert repeated.compression_ratio > varied.compression_ratio
    assert repeated.self_repetition > varied.self_repetition
    assert repeated.long_ngram_share > varied.long_ngram_share == 0
    assert repeated.near_duplicate_share > varied.near_duplicate_share == 0
    assert repeated.partners[-1] == GREETING


def test_self_bleu_matches_nltk_on_a_fixed_set() -> None:
    # Figures from nltk 3.10.4 sentence_bleu(others, post, SmoothingFunction().method1).
    docs = [text.split() for text in (
        "hi i am tina the media and journalism professional who loves stories",
        "hey i am tina the media and journalism professional who loves stories",
        "the archive smelled of dust and old ink today lovely",
        "sunrise over the hangar with a cup of coffee",
        "i am tina and i love the hangar at sunrise")]
    scores = metrics.group_bleu(docs)
    assert [round(score, 4) for score in scores] == [0.9036, 0.9036, 0.0278, 0.054, 0.1429]


def test_across_personas_bleu_ignores_a_personas_own_posts() -> None:
    docs = [metrics.words(text) for text in (GREETING, GREETING_AGAIN, VARIED[0])]
    assert metrics.group_bleu(docs, [0, 0, 1])[0] < 0.1  # its twin is its own persona's
    assert metrics.group_bleu(docs, [0, 1, 2])[0] > 0.5


def test_the_style_profile_counts_each_habit_per_pillar() -> None:
    strategy = TweetStrategy.model_validate(STRATEGY)  # at most 1 hashtag, emoji rare
    posts = [metrics_post("gliding", "Up at 6 for thermals? I am in. #gliding"),
             metrics_post("gliding", "Look https://example.com/x 🚀🚀 #a #b"),
             metrics_post("baking", "Bread.")]
    rows = {row.pillar: row for row in style_profile(posts, strategy)}
    gliding = rows["gliding"]
    assert (gliding.posts, gliding.share, gliding.target_share) == (2, 2 / 3, 0.3)
    assert (gliding.hashtags_per_post, gliding.emoji_per_post) == (1.5, 1.0)
    assert (gliding.url_rate, gliding.question_rate, gliding.first_person_rate) == (.5, .5, .5)
    assert gliding.habits_met == 0.5
    assert rows["(all)"].posts == 3 and rows["engineering"].posts == 0


def metrics_post(pillar: str, text: str) -> StyledPost:
    return StyledPost(slot_id=f"s{len(text)}", pillar=pillar, text=text)


def written_month(start_server: StartServer, make_image: Any, out: Path,
                  texts: list[str]) -> list[str]:
    """A persona and its month on a scripted server, slots spread over the month written with
    `texts`; their slot ids."""
    server = start_server(content_reply)
    card = make_cards(server, make_image, out, "ava")[0]
    result = CliRunner().invoke(app, ["calendar", str(card), "--month", MONTH, "--out", str(out)],
                                env=env(server))
    assert result.exit_code == 0, result.output

    written: list[str] = []

    def write(calendar: Any) -> None:
        step = max(1, len(calendar.slots) // len(texts))
        for slot, text in zip(calendar.slots[::step], texts, strict=False):
            slot.apply("draft")
            slot.text = text
            written.append(slot.id)

    update_calendar(OutputLayout(out).calendar_path("ava", MONTH), write)
    return written


def test_a_repeated_greeting_is_listed_with_its_slot_id(start_server: StartServer,
                                                        make_image: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    slots = written_month(start_server, make_image, out, [GREETING, *VARIED, GREETING_AGAIN])
    months, skipped = collect_months(out)
    assert not skipped
    month = measure_month(months[0], None)
    worst = month.offenders[0]
    assert worst.slot_id == slots[-1]
    assert any("near duplicate" in reason for reason in worst.reasons)


def test_a_post_about_the_persona_is_listed_with_its_slot_id(
        start_server: StartServer, make_image: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    written_month(start_server, make_image, out, list(VARIED))
    name = collect_months(out)[0][0].profile.name
    about: list[str] = []

    def write(calendar: Any) -> None:
        slot = next(slot for slot in calendar.slots if slot.status == "planned")
        slot.apply("draft")
        slot.text = f"{name} is planning a glider trip to the coast, and she is excited."
        about.append(slot.id)

    update_calendar(OutputLayout(out).calendar_path("ava", MONTH), write)
    month = measure_month(collect_months(out)[0][0], None)
    listed = next(o for o in month.offenders if o.slot_id == about[0])
    assert "names the persona in the third person at its start" in listed.reasons


def judge_replies(wrong: set[str]) -> Callable[[dict[str, Any]], Reply]:
    """Scripted judge: a post containing any of `wrong` fails, every other passes."""

    def responder(body: dict[str, Any]) -> Reply:
        if schema_name(body) != JUDGE_STAGE:
            return content_reply(body)
        positions = body["response_format"]["json_schema"]["schema"]["properties"]["verdicts"]
        ids = [item["properties"]["id"]["const"] for item in positions["prefixItems"]]
        posts = body["messages"][-1]["content"]
        verdicts = []
        for key in ids:
            line = next(line for line in posts.splitlines() if line.startswith(f"- id {key}:"))
            bad = any(marker in line for marker in wrong)
            verdicts.append({"id": key, "consistent": not bad,
                             "reason": "written in Spanish, not English" if bad else "in voice"})
        return Reply(json.dumps({"verdicts": verdicts}))

    return responder


def test_a_wrong_language_post_fails_the_judge_and_drift_shows_it(
        start_server: StartServer, make_image: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    written_month(start_server, make_image, out, [*VARIED, SPANISH])
    server = start_server(judge_replies({"masa madre"}))

    async def go() -> QualityReport:
        async with LLMSession.open(server_settings(server), out) as session:
            return await quality_report(out, session)

    report = asyncio.run(go())
    month = report.months[0]
    assert month.consistency == pytest.approx(6 / 7)
    assert report.judge is not None and report.judge.calls == 1  # 7 posts, one batch
    spanish = next(o for o in month.offenders if "masa madre" in o.text)
    assert "judge: written in Spanish, not English" in spanish.reasons
    assert [rate for _, rate in month.drift if rate is not None]
    again = asyncio.run(go())  # the same posts again: from the ledger, no new call
    assert again.judge is not None and again.judge.cached_calls == 1
    assert len([r for r in server.requests if r.schema_name == JUDGE_STAGE]) == 1


def test_the_quality_command_prints_tables_and_writes_the_html(
        start_server: StartServer, make_image: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    written_month(start_server, make_image, out, [GREETING, *VARIED, GREETING_AGAIN])
    result = CliRunner().invoke(app, ["quality", str(out), "--no-judge"])
    assert result.exit_code == 1, result.output  # a near duplicate misses the 1 % target
    assert "self-BLEU" in result.output and "Targets" in result.output
    page = (out / "quality" / "quality.html").read_text(encoding="utf-8")
    assert "<svg" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


def test_the_html_of_an_empty_folder_still_renders(tmp_path: Path) -> None:
    report = asyncio.run(quality_report(tmp_path, None))
    assert "Content quality" in quality_html(report)


def test_the_html_report_opens_in_chromium_and_shows_its_plots(
        start_server: StartServer, make_image: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    written_month(start_server, make_image, out, [GREETING, *VARIED, SPANISH, GREETING_AGAIN])
    server = start_server(judge_replies({"masa madre"}))

    async def go() -> QualityReport:
        async with LLMSession.open(server_settings(server), out) as session:
            return await quality_report(out, session)

    page_file = tmp_path / "quality.html"
    page_file.write_text(quality_html(asyncio.run(go())), encoding="utf-8")
    with chromium_page(tmp_path) as page:
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(page_file.as_uri())
        charts = page.locator("svg.chart")
        assert charts.count() >= 5  # three diversity bars, habits per pillar, drift
        for number in range(charts.count()):
            box = charts.nth(number).bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 50
        assert page.locator("svg.chart rect.bar").count() > 0
        assert page.locator("svg.chart polyline.line").count() == 1
        assert "masa madre" in page.locator(".offender").all_inner_texts().__str__()
        assert requests == [page_file.as_uri()]  # self-contained: nothing else fetched
