"""A social graph among a batch: who may know whom, ties made symmetric, saved as JSON + GraphML.

Each persona's stage 4 sees a few plausible peers from its own batch (same country, then same
niche, then same time-zone band; at most PEERS_PER_PERSONA), so the graph stays a small world,
not a clique. After the batch, every tie one side named is added to the other side's card with
the reciprocal relation, and the graph is written to `social_graph.json` and `.graphml`.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from .files import atomic_write_bytes, atomic_write_json
from .stages import social as social_stage
from .store import (
    PersonaExtension,
    card_extension,
    extensions_with,
    update_card_json,
)
from .store.layout import GRAPH_JSON

PEERS_PER_PERSONA = 4
TIE_FIELDS = ("name", "handle", "relation", "since")  # what find_ties reads of a relationship
GRAPH_ML = "social_graph.graphml"
RECIPROCAL = {
    "friend": "friend", "best friend": "best friend", "family": "family",
    "partner": "partner", "ex": "ex", "rival": "rival", "colleague": "colleague",
    "mentor": "mentee", "mentee": "mentor", "fan": "other", "other": "other",
}


@dataclass(frozen=True)
class Member:
    """A batch persona as its peers see it."""

    key: str
    name: str
    handle: str
    occupation: str
    location: str
    country: str
    timezone: str
    niche: str


@dataclass(frozen=True)
class Tie:
    """One directed relationship between two batch members."""

    source: str
    target: str
    relation: str
    since: str
    reciprocated: bool = False


def _utc_band(timezone: str) -> str:
    return timezone.split("/", 1)[0]  # continent-level: America, Europe, Asia, …


def peers_for(member: Member, members: list[Member]) -> list[Member]:
    """The few batch members this persona plausibly knows, most plausible first."""

    def score(other: Member) -> tuple[int, str]:
        points = 4 * (other.country == member.country) + 2 * (other.niche == member.niche)
        points += _utc_band(other.timezone) == _utc_band(member.timezone)
        tiebreak = hashlib.sha256(f"{member.key}:{other.key}".encode()).hexdigest()
        return -points, tiebreak

    others = sorted((m for m in members if m.key != member.key), key=score)
    return others[:PEERS_PER_PERSONA]


def describe_peers(peers: list[Member]) -> str:
    """Prompt lines for stage 4."""
    return "\n".join(f"- {p.name} (@{p.handle}), {p.occupation}, {p.location}" for p in peers)


def _match(relationship: dict[str, Any], index: dict[str, str], source: str) -> str | None:
    handle = str(relationship.get("handle", "")).lstrip("@").casefold()
    name = str(relationship.get("name", "")).casefold()
    for key in (f"handle:{handle}" if handle else "", f"name:{name}"):
        target = index.get(key)
        if target is not None and target != source:
            return target
    return None


def find_ties(members: dict[str, Member],
              socials: Iterable[tuple[str, dict[str, Any]]]) -> list[Tie]:
    """Ties each side named, plus the reciprocal of every one-sided tie."""
    # Indexed by handle and name: a batch of 10,000 would otherwise compare every relationship
    # with every member.
    index = {f"name:{m.name.casefold()}": m.key for m in members.values()}
    index.update({f"handle:{m.handle.casefold()}": m.key for m in members.values() if m.handle})
    named: dict[tuple[str, str], Tie] = {}
    for source, social in socials:
        for relationship in social.get("relationships", []):
            target = _match(relationship, index, source)
            if target is not None and (source, target) not in named:
                named[(source, target)] = Tie(source, target, relationship.get("relation", "other"),
                                              str(relationship.get("since", "")))
    ties = list(named.values())
    for tie in list(ties):
        if (tie.target, tie.source) not in named:
            ties.append(Tie(tie.target, tie.source, RECIPROCAL.get(tie.relation, "other"),
                            tie.since, reciprocated=True))
    return ties


def add_reciprocal_ties(card_paths: dict[str, Path], members: dict[str, Member],
                        ties: list[Tie]) -> None:
    """Write each added tie into the card of the side that had not named it.

    This is those cards' second write, on purpose: the first, when the persona is done, is
    what a crash or a budget stop keeps, and a tie can come from any later persona of the
    batch. Only cards gaining a tie are rewritten, each once, under the card's lock and by
    atomic replace. A rerun after a crash between the two writes completes the ties without
    doubling any: a tie written here reads back as one the card names itself.
    """
    by_card: dict[str, list[Tie]] = {}
    for tie in (t for t in ties if t.reciprocated):
        by_card.setdefault(tie.source, []).append(tie)
    for key, added in by_card.items():
        update_card_json(card_paths[key], _with_ties(added, members))


def _with_ties(ties: list[Tie], members: dict[str, Member]) -> Callable[[dict[str, Any]], None]:
    """The card change adding `ties` to the card's social stage output (when it has one)."""
    def add(card: dict[str, Any]) -> None:
        ours = card_extension(card)
        social = _social_in(ours)
        if ours is None or social is None:
            return
        for tie in ties:
            other = members[tie.target]
            social["relationships"].append({
                "name": other.name, "handle": other.handle, "relation": tie.relation,
                "description": f"named {tie.relation} by {other.name}", "since": tie.since,
            })
        ours.set_stage_output(social_stage.NAME, social)
        card["data"]["extensions"] = extensions_with(card["data"]["extensions"], ours)

    return add


def _social_in(ours: PersonaExtension | None) -> dict[str, Any] | None:
    """The stored social network (a dict with a relationships list), if the card has one."""
    social = ours.stage_output(social_stage.NAME) if ours else None
    if social is None or not isinstance(social.get("relationships"), list):
        return None
    return social


def write_graph(out_dir: Path, members: dict[str, Member], ties: list[Tie]) -> Path:
    """`social_graph.json` (nodes, edges) and `social_graph.graphml` in out_dir."""
    graph = nx.DiGraph()
    for member in members.values():
        graph.add_node(member.key, **{k: v for k, v in asdict(member).items() if k != "key"})
    for tie in ties:
        graph.add_edge(tie.source, tie.target, relation=tie.relation, since=tie.since,
                       reciprocated=tie.reciprocated)
    path = out_dir / GRAPH_JSON
    atomic_write_json(path, {
        "nodes": [{"id": key, **data} for key, data in graph.nodes(data=True)],
        "edges": [{"source": s, "target": t, **data} for s, t, data in graph.edges(data=True)],
    })
    buffer = io.BytesIO()
    nx.write_graphml(graph, buffer)
    atomic_write_bytes(out_dir / GRAPH_ML, buffer.getvalue())
    return path


class BatchLinker:
    """Holds each persona's stage 4 until every stage 1 of its cohort is done, then names peers.

    A cohort is `cohort` consecutive personas of the batch (the whole batch when it is smaller),
    so a batch streams through: stage 4 never waits for a persona not yet admitted, and peers
    are found among the cohort (deterministic: cohorts follow input order).
    """

    def __init__(self, expected: int, cohort: int | None = None) -> None:
        self.members: dict[str, Member] = {}
        self._expected = expected
        self._cohort_size = max(1, cohort or expected)
        self._cohort_of: dict[str, int] = {}
        self._pending: dict[int, int] = {}
        self._done: dict[int, asyncio.Event] = {}
        self._reported: set[str] = set()
        # Each written card's relationships, cut to what ties are made of: the ties are found
        # after the batch without reading every card back (~0.1 s a thousand cards).
        self._named: dict[str, dict[str, Any]] = {}

    def join(self, key: str) -> None:
        """Admit `key` as the next persona of the batch (before its stage 1 ends)."""
        index = len(self._cohort_of)
        cohort = index // self._cohort_size
        self._cohort_of[key] = cohort
        if cohort not in self._pending:
            size = min(self._cohort_size, self._expected - cohort * self._cohort_size)
            self._pending[cohort] = max(1, size)
            self._done[cohort] = asyncio.Event()

    def core_finished(self, key: str, member: Member | None) -> None:
        """Stage 1 of `key` ended (member None if it failed). Only a persona's first report
        counts: the countdown moves once per persona however many places report it."""
        if key in self._reported:
            return
        self._reported.add(key)
        if key not in self._cohort_of:
            self.join(key)
        cohort = self._cohort_of[key]
        if member is not None:
            self.members[key] = member
        self._pending[cohort] -= 1
        if self._pending[cohort] <= 0:
            self._done[cohort].set()

    async def peers_text(self, key: str) -> str:
        """Prompt lines naming this persona's plausible peers (after its cohort's stage 1)."""
        cohort = self._cohort_of[key]
        await self._done[cohort].wait()
        member = self.members.get(key)
        if member is None:
            return ""
        mates = [m for k, m in self.members.items() if self._cohort_of.get(k) == cohort]
        return describe_peers(peers_for(member, mates))

    def card_written(self, key: str, card: dict[str, Any]) -> None:
        """The card of `key` as it was written: its stage 4 relationships (if it has them)."""
        social = _social_in(card_extension(card))
        if social is not None:
            self._named[key] = {"relationships": [
                {field: relationship[field] for field in TIE_FIELDS if field in relationship}
                for relationship in social["relationships"] if isinstance(relationship, dict)]}

    def finish(self, out_dir: Path, card_paths: dict[str, Path]) -> Path | None:
        """Make ties symmetric in the cards and write the graph files."""
        members = {key: m for key, m in self.members.items() if key in card_paths}
        ties = find_ties(members, ((key, self._named[key]) for key in card_paths
                                   if key in members and key in self._named))
        add_reciprocal_ties(card_paths, members, ties)
        return write_graph(out_dir, members, ties)
