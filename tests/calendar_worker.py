"""Run as a separate process by test_calendar: marks slots drafted, one locked update each."""

from __future__ import annotations

import sys
from pathlib import Path

from persona_foundry.store import Calendar, update_calendar


def main(path: str, first: int, last: int) -> None:
    for index in range(first, last):
        def mark(calendar: Calendar, index: int = index) -> None:
            calendar.slots[index].status = "drafted"
            calendar.slots[index].text = f"drafted by {first}"

        update_calendar(Path(path), mark)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
