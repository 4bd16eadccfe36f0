"""Batch diversity: draws, specs, the image winning, unique names, the diversity report."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import server_settings
from openai_server import Reply
from persona_foundry.cli import app
from persona_foundry.diversity import PersonaFacts, diversity_report
from persona_foundry.errors import ConfigurationError, IdentityError
from persona_foundry.pipeline import PersonaRunOptions, generate_personas
from persona_foundry.population import (
    ATTRIBUTES,
    DEFAULT_WEIGHTS,
    NameRegistry,
    PersonaDraw,
    PopulationSpec,
    claim_fixed_identity,
    draw_for_image,
    draw_identity,
    load_population_spec,
    name_in_hint,
    reconcile_with_image,
)
from persona_foundry.textchecks import NEAR_DUPLICATE_JACCARD, jaccard
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


def one_name_only(body: dict[str, Any]) -> Reply:
    """A model with no name variety at all: every stage 1 reply is Maya Chen, @mayachen."""
    if schema_name(body) != "core":
        return content_reply(body)
    core = json.loads(content_reply(body).content or "{}")
    return Reply(json.dumps({**core, "name": "Maya Chen", "handle": "mayachen"}))


def card_identities(folder: Path) -> list[tuple[str, str]]:
    """(name, handle) of every card in a personas folder."""
    cards = [json.loads(path.read_text()) for path in sorted(folder.glob("*_persona.json"))]
    return [(card["data"]["name"], card["data"]["extensions"]["persona_foundry"]["core"]["handle"])
            for card in cards]


def test_200_personas_from_a_model_with_one_name_all_complete_unique(
        start_server, make_image, tmp_path: Path) -> None:
    server = start_server(one_name_only)
    out = tmp_path / "out"
    first = asyncio.run(generate_personas(
        PersonaRunOptions(images=[make_image(f"a{n}.png") for n in range(150)], out_dir=out,
                          link_batch=False), server_settings(server, max_concurrent=40)))
    second = asyncio.run(generate_personas(
        PersonaRunOptions(images=[make_image(f"b{n}.png") for n in range(50)], out_dir=out,
                          link_batch=False), server_settings(server, max_concurrent=40)))

    assert first.succeeded == 150 and second.succeeded == 50
    identities = card_identities(out / "personas")
    assert len(identities) == 200
    assert len({name.casefold() for name, _ in identities}) == 200
    assert len({handle.casefold() for _, handle in identities}) == 200
    assert not any(name == "Maya Chen" for name, _ in identities)
    # Uniqueness cost no re-ask: one stage 1 call per persona, and no prompt lists the taken.
    cores = server.chat_requests("core")
    assert len(cores) == 200 and not any("already taken" in r.text.lower() for r in cores)


def core_prompt_chars(request: Any) -> int:
    return len(request.body["messages"][1]["content"])


def test_the_stage_1_prompt_does_not_grow_with_the_folder(schema_server, make_image,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "out"
    for batch in range(3):
        images = [make_image(f"img{batch}_{n:02d}.png") for n in range(20)]
        summary = asyncio.run(generate_personas(PersonaRunOptions(images=images, out_dir=out),
                                                server_settings(schema_server)))
        assert summary.succeeded == 20
    sizes = [core_prompt_chars(r) for r in schema_server.chat_requests("core")]
    assert len(sizes) == 60
    # Only the drawn attributes and the name vary; the 40 cards already there add nothing.
    assert max(sizes) <= 1.05 * min(sizes), (min(sizes), max(sizes))
    assert statistics_mean(sizes[-20:]) <= 1.02 * statistics_mean(sizes[:20])


def statistics_mean(values: list[int]) -> float:
    return sum(values) / len(values)


def names_of(out: Path) -> list[str]:
    return [name for name, _ in card_identities(out / "personas")]


def test_names_are_reproducible_by_seed_and_told_to_stage_1(schema_server, make_image,
                                                            tmp_path: Path) -> None:
    images = [make_image(f"{n}.png") for n in "abcde"]

    def run(folder: str, seed: int) -> list[str]:
        options = PersonaRunOptions(images=images, out_dir=tmp_path / folder, seed=seed)
        summary = asyncio.run(generate_personas(options, server_settings(schema_server)))
        assert summary.succeeded == 5
        return names_of(tmp_path / folder)

    first, again, other = run("one", 7), run("two", 7), run("three", 8)
    assert first == again and first != other
    core = schema_server.chat_requests("core")[0]
    schema = core.body["response_format"]["json_schema"]["schema"]["properties"]
    assert f"- name: {schema['name']['const']}" in core.text  # told, and pinned in the schema
    assert schema["handle"]["const"] in core.text
    card = json.loads(next((tmp_path / "one" / "personas").glob("*.json")).read_text())
    assert card["data"]["extensions"]["persona_foundry"]["draw"]["name_from"] == "drawn"


def test_a_hint_naming_the_persona_wins(schema_server, make_image, tmp_path: Path) -> None:
    options = PersonaRunOptions(images=[make_image("ana.png")], out_dir=tmp_path / "out",
                                hint="a rock climber from Lyon named Ana Ortiz who bakes")
    assert asyncio.run(generate_personas(options, server_settings(schema_server))).succeeded == 1
    assert card_identities(tmp_path / "out" / "personas") == [("Ana Ortiz", "anaortiz")]
    assert name_in_hint("a rock climber from Lyon") is None
    assert name_in_hint("called Kenji, a carpenter") == "Kenji"
    assert name_in_hint("name: 林 千代") == "林 千代"


def test_a_population_spec_fixes_or_weights_names(schema_server, make_image,
                                                  tmp_path: Path) -> None:
    fixed = load_spec({"name": "Kenji Sato"})
    one = PersonaRunOptions(images=[make_image("k.png")], out_dir=tmp_path / "out",
                            population=fixed)
    assert asyncio.run(generate_personas(one, server_settings(schema_server))).succeeded == 1
    assert card_identities(tmp_path / "out" / "personas") == [("Kenji Sato", "kenjisato")]
    # A second persona cannot have a fixed name the folder already holds: it fails before
    # paying for anything, and says why.
    again = dataclasses.replace(one, images=[make_image("k2.png")])
    summary = asyncio.run(generate_personas(again, server_settings(schema_server)))
    assert summary.failed == 1 and "'Kenji Sato' (from the population) is already taken" in (
        summary.outcomes[0].error or "")
    assert len(schema_server.chat_requests("core")) == 1
    # A fixed family name makes a family; the given names are still drawn, all different.
    family = PersonaRunOptions(images=[make_image(f"f{n}.png") for n in range(6)],
                               out_dir=tmp_path / "family", population=load_spec(
                                   {"last_name": "Okafor", "region": "nigeria"}))
    assert asyncio.run(generate_personas(family, server_settings(schema_server))).succeeded == 6
    names = names_of(tmp_path / "family")
    assert all(name.endswith(" Okafor") for name in names) and len(set(names)) == 6


def test_claims_are_unique_and_fall_back_to_further_draws() -> None:
    registry = NameRegistry()
    spec = load_spec({"region": "vietnam", "gender": "woman"})
    taken = set()
    for number in range(400):  # far more than vi_VN's plain first × last names for one gender
        image = hashlib.sha256(str(number).encode()).hexdigest()
        name, handle = draw_identity(draw_for_image(spec, 1, image), spec, seed=1,
                                     image_sha256=image, language="English", registry=registry,
                                     owner=image)
        assert (name.casefold(), handle.casefold()) not in taken
        taken.add((name.casefold(), handle.casefold()))
    assert len({name for name, _ in taken}) == 400 and len({h for _, h in taken}) == 400
    assert registry.claim("Ana Ortiz", "anaortiz", "a") and not registry.claim(
        "ANA  ortiz", "other", "b") and registry.claim("Ana Ortiz", "anaortiz", "a")


@pytest.mark.parametrize(("region", "language", "script"), [
    ("japan", "English", str.isascii), ("japan", "Japanese", lambda name: not name.isascii()),
    ("korea", "English", str.isascii), ("korea", "Korean", lambda name: not name.isascii()),
    ("egypt", "Arabic", lambda name: not name.isascii()), ("india", "English", str.isascii),
])
def test_names_follow_region_and_language(region: str, language: str, script: Any) -> None:
    spec = load_spec({"region": region})
    registry = NameRegistry()
    for number in range(10):
        image = str(number) * 64
        name, handle = draw_identity(draw_for_image(spec, 3, image), spec, seed=3,
                                     image_sha256=image, language=language, registry=registry,
                                     owner=image)
        assert script(name), name
        assert re.fullmatch(r"[a-z0-9_]{1,15}", handle), handle


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


def test_lsh_report_counts_what_all_pairs_would() -> None:
    rng = random.Random(5)
    words = ["river", "bread", "violin", "orbit", "garden", "marathon", "pixel", "harbor",
             "lantern", "cedar", "thermal", "sketch", "podcast", "compass", "tram", "honey"]
    bios = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(380)]
    bios += [bio + " and more" for bio in bios[:20]]  # 20 planted rewordings
    batch = [facts(f"Name {n}", f"h{n}", bio) for n, bio in enumerate(bios)]
    exact = sum(jaccard(a, b) >= NEAR_DUPLICATE_JACCARD
                for a, b in itertools.combinations(bios, 2))
    report = diversity_report(iter(batch))  # one pass: a generator is enough
    assert report.bio_pairs == 400 * 399 // 2
    assert exact >= 20 and abs(report.near_duplicate_pairs - exact) <= max(1, exact // 20)
    assert report.most_similar[0][0] == max(itertools.starmap(jaccard, zip(bios[:20], bios[380:],
                                                                             strict=True)))


def test_a_taken_name_fails_a_creator_but_not_an_existing_card() -> None:
    registry = NameRegistry()
    assert registry.claim("Ana Ortiz", "anaortiz", "folder:ana_persona.json")
    with pytest.raises(IdentityError, match="'Ana Ortiz' \\(from the hint\\) is already taken"):
        claim_fixed_identity(registry, "Ana Ortiz", "new", "hint", "0:x")
    # A card from before names were claimed keeps who it is, duplicate or not.
    assert claim_fixed_identity(registry, "Ana Ortiz", "old", "card", "0:y",
                                "anaortiz") == ("Ana Ortiz", "anaortiz")
    assert claim_fixed_identity(registry, "Bo Li", "bo", "hint", "0:z") == ("Bo Li", "boli")


def test_weighted_names_are_used_until_taken_then_the_region_draws() -> None:
    spec = load_weighted_names({"Ana Ortiz": 3, "Kenji Sato": 1})
    registry = NameRegistry()
    drawn = []
    for number in range(6):
        image = hashlib.sha256(f"w{number}".encode()).hexdigest()
        drawn.append(draw_identity(draw_for_image(spec, 2, image), spec, seed=2,
                                   image_sha256=image, language="English", registry=registry,
                                   owner=image)[0])
    assert {"Ana Ortiz", "Kenji Sato"} <= set(drawn) and len(set(drawn)) == 6


def load_weighted_names(weights: dict[str, float]) -> PopulationSpec:
    return PopulationSpec.model_validate({"attributes": {"name": {"weights": weights}}})
