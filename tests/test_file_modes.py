"""Written files get the mode any new file gets (the umask decides), not a temp file's 0600, so
the web server or scheduler that should read the outputs can."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cardfiles import card_bytes, run_cli, v2_card, write_png_card
from persona_foundry.files import atomic_write_bytes


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_mode_the_umask_gives(umask: int, mode: int,
                                                    tmp_path: Path) -> None:
    png = write_png_card(tmp_path / "ana.png", card_bytes(v2_card("Ana")))
    previous = os.umask(umask)
    try:
        run_cli("export", png, "-f", "all", "--out", tmp_path / "exports")
        run_cli("import", png, "--out", tmp_path / "out")
        atomic_write_bytes(tmp_path / "plain.txt", b"x")
    finally:
        os.umask(previous)
    written = [*(tmp_path / "exports").iterdir(), *(tmp_path / "out" / "personas").iterdir(),
               tmp_path / "plain.txt"]
    assert len(written) == 8
    assert {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in written} == {
        path.name: oct(mode) for path in written}
