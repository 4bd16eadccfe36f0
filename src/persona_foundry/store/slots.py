"""The slot lifecycle: one state machine, its moves as data.

    planned ─draft─▶ drafted ─approve─▶ approved ─start_publish─▶ publishing ─confirm─▶ posted
       │ fail          ▲            edit ◀─┘ (changed text needs approving again)  │ reject
       ▼               │                               defer (429/401) ◀──────────┤
    failed ──draft─────┘                                                          ▼
                                                                                failed
    (skip from planned, drafted, approved or failed; unskip back to planned)

Who makes a move — `tweets` drafting, a user approving in the CLI or the studio, the publisher —
does not matter here: a move is allowed from the states the table lists, or it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

SlotStatus = Literal["planned", "drafted", "approved", "publishing", "posted", "skipped",
                     "failed"]
SLOT_STATUSES: tuple[SlotStatus, ...] = get_args(SlotStatus)
SlotMove = Literal["draft", "fail", "approve", "edit", "skip", "unskip", "start_publish",
                   "confirm", "reject", "defer", "mark_posted"]


@dataclass(frozen=True)
class Move:
    """A move's source states and its target."""

    sources: frozenset[SlotStatus]
    target: SlotStatus
    doc: str


MOVES: dict[SlotMove, Move] = {
    "draft": Move(frozenset({"planned", "failed"}), "drafted", "a post was written for the slot"),
    "fail": Move(frozenset({"planned"}), "failed", "no acceptable post after every attempt"),
    "approve": Move(frozenset({"drafted"}), "approved", "a person approved the post"),
    "edit": Move(frozenset({"drafted", "approved", "failed"}), "drafted",
                 "the text changed: an approved post needs approving again"),
    "skip": Move(frozenset({"planned", "drafted", "approved", "failed"}), "skipped",
                 "the slot will not be posted"),
    "unskip": Move(frozenset({"skipped"}), "planned", "a skipped slot is open again"),
    "start_publish": Move(frozenset({"approved"}), "publishing",
                          "a publish attempt was recorded and is about to be sent"),
    "confirm": Move(frozenset({"publishing"}), "posted", "the platform answered with its post"),
    "reject": Move(frozenset({"publishing"}), "failed", "the platform refused the post"),
    "defer": Move(frozenset({"publishing"}), "approved",
                  "the platform turned the account away for now (429, 401): nothing went out"),
    "mark_posted": Move(frozenset({"drafted", "approved"}), "posted",
                        "a person posted it by hand"),
}
# The CLI's status flags map onto moves (`calendar --approve ID` is the `approve` move).
MOVE_FOR_STATUS: dict[SlotStatus, SlotMove] = {
    "approved": "approve", "skipped": "skip", "posted": "mark_posted",
}


class SlotMoveError(ValueError):
    """A move the state machine does not allow from the slot's state."""


def next_status(current: SlotStatus, move: SlotMove) -> SlotStatus:
    """The status after `move`, or SlotMoveError naming why it cannot happen."""
    rule = MOVES[move]
    if current not in rule.sources:
        allowed = ", ".join(sorted(rule.sources))
        raise SlotMoveError(f"is {current}, cannot become {rule.target} by {move} "
                            f"(only from {allowed})")
    return rule.target


def can_move(current: SlotStatus, move: SlotMove) -> bool:
    """Whether `move` is allowed from `current`."""
    return current in MOVES[move].sources
