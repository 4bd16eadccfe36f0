"""A batch's personas know each other: peers in stage 4, symmetric ties, graph files."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from conftest import server_settings
from openai_server import Reply
from persona_foundry import socialgraph
from persona_foundry.calendar import ensure_calendar
from persona_foundry.cards.validate import file_problems
from persona_foundry.llm.session import LLMSession
from persona_foundry.pipeline import PersonaRunOptions, generate_personas
from persona_foundry.profile import load_profile
from persona_foundry.socialgraph import PEERS_PER_PERSONA, Member, find_ties, peers_for
from stage_replies import SOCIAL, content_reply, schema_name

_PEER = re.compile(r"- ([^(\\]+) \(@(\w+)\)")
_IMAGE = re.compile(r"file name: (\S+)")


def befriend_first_peer(body: dict[str, Any]) -> Reply:
    """Stage 4 names the first peer it is offered as a friend (only that side names it)."""
    if schema_name(body) == "core":  # the image's name, where stage 4 will see it
        core = json.loads(content_reply(body).content or "{}")
        image = _IMAGE.search(body["messages"][1]["content"]).group(1)  # type: ignore[union-attr]
        return Reply(json.dumps({**core, "occupation": f"keeper of {image}"}))
    if schema_name(body) != "social":
        return content_reply(body)
    text = body["messages"][1]["content"]
    social = json.loads(json.dumps(SOCIAL))
    if "People they may know" in text:
        section = text.split("People they may know", 1)[1]
        name, handle = _PEER.search(section).groups()  # type: ignore[union-attr]
        if '"occupation":"keeper of b.png"' in text:  # only b reaches out: a one-sided tie
            social["relationships"].append({"name": name.strip(), "handle": handle,
                                            "relation": "mentor", "description": "met at a meetup",
                                            "since": "2020"})
    return Reply(json.dumps(social))


def run_batch(server, images: list[Path], out: Path, **options: Any):
    return asyncio.run(generate_personas(
        PersonaRunOptions(images=images, out_dir=out, **options), server_settings(server)))


def test_batch_personas_get_peers_and_symmetric_ties(start_server, make_image,
                                                     tmp_path: Path) -> None:
    server = start_server(befriend_first_peer, latency_s=0.05)
    images = [make_image(f"{name}.png") for name in "abc"]
    summary = run_batch(server, images, tmp_path / "out")
    assert summary.succeeded == 3

    cores = server.chat_requests("core")
    socials = server.chat_requests("social")
    assert min(r.started for r in socials) >= max(r.finished for r in cores) - 0.01
    assert all("People they may know" in r.text for r in socials)

    graph_file = json.loads((tmp_path / "out" / "social_graph.json").read_text())
    assert {node["id"] for node in graph_file["nodes"]} == {"a", "b", "c"}
    edges = {(e["source"], e["target"]): e for e in graph_file["edges"]}
    assert len(edges) == 2
    (named,) = [e for e in edges.values() if not e["reciprocated"]]
    back = edges[(named["target"], named["source"])]
    assert named["source"] == "b" and named["relation"] == "mentor"
    assert back["relation"] == "mentee" and back["reciprocated"] and back["since"] == "2020"

    other_card = json.loads((tmp_path / "out" / "personas" /
                             f"{named['target']}_persona.json").read_text())
    relationships = other_card["data"]["extensions"]["persona_foundry"]["social"]["relationships"]
    b_handle = json.loads((tmp_path / "out" / "personas" / "b_persona.json").read_text())[
        "data"]["extensions"]["persona_foundry"]["core"]["handle"]
    assert any(r["relation"] == "mentee" and r["handle"] == b_handle for r in relationships)

    graphml = nx.read_graphml(tmp_path / "out" / "social_graph.graphml")
    assert set(graphml.nodes) == {"a", "b", "c"} and graphml.number_of_edges() == 2

    # The calendar of a linked persona may put the people they know into its events.
    async def plan() -> None:
        async with LLMSession.open(server_settings(server), tmp_path / "out") as session:
            card = tmp_path / "out" / "personas" / "b_persona.json"
            await ensure_calendar(session, load_profile(card), "2026-12", tmp_path / "out")

    asyncio.run(plan())
    calendar_prompt = server.chat_requests("calendar")[0].text
    target = next(n for n in graph_file["nodes"] if n["id"] == named["target"])
    assert f"@{target['handle']}), mentor" in calendar_prompt


def _relationships(out: Path, key: str) -> list[dict[str, Any]]:
    card = json.loads((out / "personas" / f"{key}_persona.json").read_text())
    relationships: list[dict[str, Any]] = card["data"]["extensions"]["persona_foundry"][
        "social"]["relationships"]
    return relationships


def test_a_crash_between_a_cards_two_writes_leaves_valid_cards_a_rerun_completes(
        start_server, make_image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_server(befriend_first_peer)
    images = [make_image(f"{name}.png") for name in "abc"]
    out = tmp_path / "out"

    def crash(*args: Any) -> None:
        raise KeyboardInterrupt  # the process dies after every first write, before the second

    with monkeypatch.context() as patch:
        patch.setattr(socialgraph, "add_reciprocal_ties", crash)
        with pytest.raises(KeyboardInterrupt):
            run_batch(server, images, out)
    cards = sorted((out / "personas").glob("*_persona.json"))
    assert len(cards) == 3 and all(file_problems(card) == [] for card in cards)
    before = {key: _relationships(out, key) for key in "abc"}
    assert not any(r["relation"] == "mentee" for rs in before.values() for r in rs)
    assert not (out / "social_graph.json").exists()

    calls = len(server.requests)
    run_batch(server, images, out)  # resumes: every stage from the cards, then the ties
    assert len(server.requests) == calls  # nothing paid again
    after = {key: _relationships(out, key) for key in "abc"}
    added = [(key, r) for key, rs in after.items() for r in rs if r not in before[key]]
    assert [r["relation"] for _, r in added] == ["mentee"]
    assert (out / "social_graph.json").exists()

    run_batch(server, images, out)  # and once more: the tie is not doubled
    assert {key: _relationships(out, key) for key in "abc"} == after
    assert all(file_problems(card) == [] for card in cards)


def test_single_persona_or_no_link_batch_makes_no_graph(start_server, make_image,
                                                       tmp_path: Path) -> None:
    server = start_server(befriend_first_peer)
    run_batch(server, [make_image("a.png")], tmp_path / "one")
    run_batch(server, [make_image("b.png"), make_image("c.png")], tmp_path / "two",
              link_batch=False)
    assert not (tmp_path / "one" / "social_graph.json").exists()
    assert not (tmp_path / "two" / "social_graph.json").exists()
    assert not any("People they may know" in r.text for r in server.chat_requests("social"))


def member(key: str, country: str, niche: str, zone: str = "Europe/Madrid") -> Member:
    return Member(key, key.title(), key, "job", "city", country, zone, niche)


def test_peers_are_few_and_plausible() -> None:
    crowd = [member("me", "Spain", "food"), member("vecina", "Spain", "books"),
             member("chef", "Japan", "food", "Asia/Tokyo")]
    crowd += [member(f"far{n}", "Kenya", "gaming", "Africa/Nairobi") for n in range(10)]
    peers = peers_for(crowd[0], crowd)
    assert len(peers) == PEERS_PER_PERSONA
    assert [p.key for p in peers[:2]] == ["vecina", "chef"]  # same country, then same niche


def test_ties_match_by_handle_or_name_and_ignore_outsiders() -> None:
    members = {"a": member("a", "Spain", "x"), "b": member("b", "Spain", "x")}
    socials = {"a": {"relationships": [
        {"name": "B", "handle": "@b", "relation": "rival", "since": "2021"},
        {"name": "Someone Else", "handle": "else", "relation": "friend", "since": ""},
    ]}, "b": {"relationships": [{"name": "A", "handle": "", "relation": "rival", "since": "x"}]}}
    ties = find_ties(members, socials.items())
    assert {(t.source, t.target, t.relation, t.reciprocated) for t in ties} == {
        ("a", "b", "rival", False), ("b", "a", "rival", False)}
