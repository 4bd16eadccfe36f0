"""The publisher in a process of its own, for the crash tests.

    python publish_worker.py OUT_DIR KILL_AFTER_SENDS

With KILL_AFTER_SENDS = N > 0 the process SIGKILLs itself right after the platform accepted its
Nth post and before that slot is updated: the exact window that leaves an uncertain attempt.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from persona_foundry.ledger import open_ledger
from persona_foundry.publish import PLATFORMS, OutgoingPost, PublishedPost, Publisher
from persona_foundry.store import OutputLayout


def main(out: Path, kill_after: int) -> int:
    sends = 0

    def after_send(post: OutgoingPost, published: PublishedPost) -> None:
        nonlocal sends
        sends += 1
        if sends == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    layout = OutputLayout(out)
    ledger = open_ledger(layout.ledger_path)
    publisher = Publisher(layout, ledger, PLATFORMS, run_id=f"worker-{os.getpid()}",
                          after_send=after_send)
    summary = asyncio.run(publisher.run_once())
    ledger.close()
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2])))
