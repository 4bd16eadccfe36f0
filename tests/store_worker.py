"""Run as separate processes by test_concurrent_writers: the `images` attach step and the
`calendar --approve/--skip` moves, each as many small locked updates as it can make."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from persona_foundry.calendar import set_slot_status
from persona_foundry.images.jobs import plan_tweet_images, record_outcomes
from persona_foundry.images.render import RenderOutcome
from persona_foundry.store import SlotStatus

PAUSE_S = 0.02


def attach_images(tweet_file: Path, out: Path, stop: Path) -> None:
    """Attach a (pretend-rendered) image to each image post, one post per update, again and
    again until `stop` exists: every round must leave every image path in place."""
    plan = plan_tweet_images([tweet_file], out, None, 0, safe_for_work=True)
    targets = plan.to_render + plan.made
    while True:
        for target in targets:
            outcome = RenderOutcome(target.job.job_id, "done", target.job.output, seed=1)
            if record_outcomes([target], {target.job.job_id: outcome}):
                raise SystemExit(f"cannot attach {target.job.job_id}")
            time.sleep(PAUSE_S)
        if stop.exists():
            return


def move_slots(calendar: Path, moves: list[str]) -> None:
    """`calendar --approve ID` / `--skip ID`, one slot a call (moves: `approved:ID`, …)."""
    for move in moves:
        status, slot_id = move.split(":", 1)
        wanted: SlotStatus = "approved" if status == "approved" else "skipped"
        problems = set_slot_status(calendar, [slot_id], wanted)
        if problems:
            raise SystemExit(f"{slot_id}: {problems}")
        time.sleep(PAUSE_S * 5)


if __name__ == "__main__":
    if sys.argv[1] == "images":
        attach_images(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        move_slots(Path(sys.argv[2]), sys.argv[3:])
