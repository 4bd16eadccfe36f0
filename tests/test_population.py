"""Batch diversity: draws, specs, the image winning, unique names, the diversity report."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import server_settings
from openai_server import Reply
from persona_foundry.cli import app
from persona_foundry.diversity import PersonaFacts, diversity_report
from persona_foundry.errors import ConfigurationError
from persona_foundry.pipeline import PersonaRunOptions, generate_personas
from persona_foundry.population import (
    ATTRIBUTES,
    DEFAULT_WEIGHTS,
    PersonaDraw,
    PopulationSpec,
    draw_for_image,
    load_population_spec,
    reconcile_with_image,
)
from stage_replies import content_reply, schema_name

TOLERANCE = 0.1


def draws_for(count: int, spec: PopulationSpec, seed: int) -> list[PersonaDraw]:
    """What a batch of `count` distinct images gets: one draw per image hash."""
    return [draw_for_image(spec, seed, hashlib.sha256(str(n).encode()).hexdigest())
            for n in range(count)]


def test_200_draws_match_the_targets() -> None:
    draws = draws_for(200, PopulationSpec(), seed=42)
    for attribute in ATTRIBUTES:
        weights = DEFAULT_WEIGHTS[attribute]
        total = sum(weights.values())
        counts = Counter(getattr(draw, attribute) for draw in draws)
        for value, weight in weights.items():
            assert abs(counts[value] / 200 - weight / total) <= TOLERANCE, (attribute, value)
    assert all(draw.age_band in DEFAULT_WEIGHTS["age_band"] for draw in draws)  # 18+ bands


def test_draws_are_reproducible() -> None:
    assert draws_for(20, PopulationSpec(), 1) == draws_for(20, PopulationSpec(), 1)
    assert draws_for(20, PopulationSpec(), 1) != draws_for(20, PopulationSpec(), 2)
    one = draw_for_image(PopulationSpec(), 7, "a" * 64)
    assert one == draw_for_image(PopulationSpec(), 7, "a" * 64)
    assert one != draw_for_image(PopulationSpec(), 7, "b" * 64)


def test_spec_files_fix_and_reweight(tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text("attributes:\n  region: {fixed: japan}\n"
                         "  niche: {weights: {food: 3, travel: 1}}\n")
    draws = draws_for(200, load_population_spec(spec_file), seed=3)
    assert {draw.region for draw in draws} == {"japan"}
    assert all(draw.timezone == "Asia/Tokyo" for draw in draws)
    food = sum(draw.niche == "food" for draw in draws) / 200
    assert abs(food - 0.75) <= TOLERANCE
    as_json = tmp_path / "spec.json"
    as_json.write_text(json.dumps({"attributes": {"gender": {"fixed": "woman"}}}))
    assert {d.gender for d in draws_for(20, load_population_spec(as_json), 1)} == {"woman"}


@pytest.mark.parametrize("text", [
    "attributes:\n  shoe_size: {fixed: '42'}\n",
    "attributes:\n  region: {fixed: atlantis}\n",
    "attributes:\n  gender: {weights: {woman: 1}, fixed: woman}\n",
    "attributes: [not, a, mapping]\n",
])
def test_bad_spec_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match="population spec"):
        load_population_spec(path)


def test_the_image_wins_over_the_draw() -> None:
    draw = draws_for(1, load_spec({"age_band": "18-24", "gender": "man"}), 1)[0]
    photo = reconcile_with_image(draw, apparent_age=62, apparent_gender="female")
    assert (photo.age_band, photo.gender) == ("55-70", "woman")
    assert photo.overridden_by_image == ["age_band", "gender"]
    close = reconcile_with_image(draw, apparent_age=27, apparent_gender="male")
    assert close == draw  # within the band's margin and the same gender: the draw stands


def load_spec(fixed: dict[str, str]) -> PopulationSpec:
    return PopulationSpec.model_validate(
        {"attributes": {key: {"fixed": value} for key, value in fixed.items()}})


def test_name_clashes_in_batch_and_folder_force_regeneration(start_server, make_image,
                                                             tmp_path: Path) -> None:
    def responder(body: dict[str, Any]) -> Reply:
        if schema_name(body) != "core":
            return content_reply(body)
        text = json.dumps(body["messages"])
        image = text.split("file name: ")[1][0]  # a, b, c or d
        core = json.loads(content_reply(body).content or "{}")
        if "already taken" in text:  # told its pick is taken, it picks its own
            core.update(name=f"Maya Chen {image.upper()}", handle=f"mayachen_{image}")
        else:
            core.update(name="Maya Chen", handle="mayachen")
        return Reply(json.dumps(core))

    server = start_server(responder)
    out = tmp_path / "out"
    first = asyncio.run(generate_personas(
        PersonaRunOptions(images=[make_image("a.png")], out_dir=out), server_settings(server)))
    assert first.succeeded == 1

    batch = [make_image(f"{n}.png") for n in "bcd"]
    summary = asyncio.run(generate_personas(PersonaRunOptions(images=batch, out_dir=out),
                                            server_settings(server)))

    assert summary.succeeded == 3
    names = [json.loads(o.card_path.read_text())["data"]["name"] for o in summary.outcomes]
    assert sorted(names) == ["Maya Chen B", "Maya Chen C", "Maya Chen D"]
    first_asks = [r for r in server.chat_requests("core")[1:] if "already taken" not in r.text]
    assert all("names: maya chen" in r.text and "@mayachen" in r.text for r in first_asks)
    # The draw reached stage 1 and is kept in the card.
    assert all("Seed attributes" in r.text and "content niche" in r.text for r in first_asks)
    card = json.loads(summary.outcomes[0].card_path.read_text())
    assert card["data"]["extensions"]["persona_foundry"]["draw"]["niche"]


def test_rerun_of_a_batch_is_free(start_server, make_image, tmp_path: Path) -> None:
    server = start_server(content_reply)
    images = [make_image(f"{n}.png") for n in "xyz"]
    options = PersonaRunOptions(images=images, out_dir=tmp_path / "out")
    asyncio.run(generate_personas(options, server_settings(server)))
    calls = len(server.chat_requests())
    for card in (tmp_path / "out" / "personas").glob("*.json"):
        card.unlink()
    again = asyncio.run(generate_personas(options, server_settings(server)))
    assert again.succeeded == 3 and len(server.chat_requests()) == calls


def facts(name: str, handle: str, bio: str, **draw: str) -> PersonaFacts:
    return PersonaFacts(f"{handle}_persona.json", name, handle, bio, draw)


def test_report_numbers_on_a_crafted_batch() -> None:
    batch = [
        facts("Ana Ruiz", "ana", "Nurse in Madrid who runs marathons and bakes on Sundays.",
              gender="woman", region="spain"),
        facts("ana ruiz", "ana2", "Nurse in Madrid who runs marathons and bakes every Sunday.",
              gender="woman", region="spain"),
        facts("Kenji Sato", "kenji", "Osaka carpenter restoring old bicycles for kids.",
              gender="man", region="japan"),
        facts("Ife Okoro", "kenji", "Lagos founder of a tiny solar-powered radio station.",
              gender="woman", region="nigeria"),
    ]
    report = diversity_report(batch)
    assert report.personas == 4 and report.distinct_names == 3
    assert report.duplicate_names == ["ana ruiz"] and report.duplicate_handles == ["kenji"]
    assert report.bio_pairs == 6 and report.near_duplicate_pairs == 1
    assert report.most_similar[0][1:] == ("ana_persona.json", "ana2_persona.json")
    assert report.distributions["gender"]["woman"][0] == 0.75
    assert not report.meets_targets


def test_diversity_command(start_server, make_image, tmp_path: Path) -> None:
    server = start_server(content_reply)
    env = {"LLM_BASE_URL": server.base_url, "LLM_API_KEY": "k", "LLM_MODEL": "m"}
    images = [str(make_image(f"{n}.png")) for n in "pqr"]
    made = CliRunner().invoke(app, ["persona", *images, "--out", str(tmp_path / "out"),
                                    "--seed", "5"], env=env)
    assert made.exit_code == 0, made.output
    assert "Diversity of 3 personas" in made.output
    result = CliRunner().invoke(app, ["diversity", str(tmp_path / "out" / "personas")])
    assert "distinct names 3/3" in result.output
    # The canned bios are identical, so the near-duplicate target is missed: exit 1.
    assert result.exit_code == 1 and "misses targets" in result.output
