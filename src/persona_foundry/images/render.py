"""One loaded text-to-image pipeline and what it renders: jobs in, PNG files with metadata out.

Everything here runs inside a worker (a process per GPU, or a Ray actor); torch and diffusers are
imported there, never by the CLI process that only plans jobs.
"""

from __future__ import annotations

import inspect
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .. import __version__
from ..errors import ConfigurationError
from ..files import atomic_write_bytes

if TYPE_CHECKING:
    from .safety import NsfwScorer

DType = Literal["auto", "float32", "float16", "bfloat16"]
OutcomeStatus = Literal["done", "quarantined", "failed"]
# A re-render after an NSFW score moves the seed this far: a different image, still repeatable.
NSFW_SEED_STRIDE = 1_000_003
AI_DISCLOSURE = "AI-generated image (synthetic persona; not a photograph of a real person)"
IPTC_SYNTHETIC = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


@dataclass(frozen=True)
class FamilyDefaults:
    """Steps, guidance and size a model family is meant to run at."""

    pipeline_prefix: str
    name_hint: str
    steps: int
    guidance: float
    size: int


# First match wins: a distilled (turbo/schnell) variant before its family's plain entry.
FAMILY_DEFAULTS = (
    FamilyDefaults("StableDiffusionXL", "turbo", 1, 0.0, 512),
    FamilyDefaults("StableDiffusionXL", "", 30, 5.0, 1024),
    FamilyDefaults("StableDiffusion3", "", 28, 7.0, 1024),
    FamilyDefaults("Flux", "schnell", 4, 0.0, 1024),
    FamilyDefaults("Flux", "", 28, 3.5, 1024),
    FamilyDefaults("StableDiffusion", "turbo", 1, 0.0, 512),
    FamilyDefaults("StableDiffusion", "", 25, 7.5, 512),
)
OTHER_FAMILY = FamilyDefaults("", "", 25, 5.0, 512)


def family_defaults(pipeline_class: str, model: str) -> FamilyDefaults:
    """The defaults for a pipeline class (and a hint in the model's name such as `turbo`)."""
    name = model.lower()
    for family in FAMILY_DEFAULTS:
        if pipeline_class.startswith(family.pipeline_prefix) and family.name_hint in name:
            return family
    return OTHER_FAMILY


@dataclass(frozen=True)
class RenderSpec:
    """How every image of a run is rendered (sent to each worker once)."""

    model: str
    steps: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    dtype: DType = "auto"
    scheduler: str | None = None
    ip_adapter: str | None = None
    ip_adapter_scale: float = 0.6
    nsfw_check: bool = True
    nsfw_threshold: float = 0.5
    nsfw_rerenders: int = 2
    threads: int | None = None


@dataclass(frozen=True)
class ImageJob:
    """One image to make: prompt, seed, where it goes, and the face to keep."""

    job_id: str
    prompt: str
    negative_prompt: str
    seed: int
    output: str
    quarantine_output: str
    reference: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderOutcome:
    """What became of a job."""

    job_id: str
    status: OutcomeStatus
    path: str | None = None
    seed: int | None = None
    nsfw_score: float | None = None
    renders: int = 0
    error: str | None = None
    attempts: int = 1


def local_model_source(model: str) -> str:
    """The folder or cached model id to load, or a ConfigurationError naming both places looked."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ConfigurationError(f"--model {model}: the folder has no model_index.json "
                                     "(save the pipeline with save_pretrained)")
        return str(path.resolve())
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.constants import HF_HUB_CACHE

    cached = None if path.is_absolute() or model.count("/") != 1 \
        else try_to_load_from_cache(model, "model_index.json")
    if not isinstance(cached, str):
        raise ConfigurationError(
            f"--model {model!r} is neither a local folder nor a model in the local Hugging Face "
            f"cache ({HF_HUB_CACHE}); models are never downloaded at run time")
    return model


def png_bytes(image: Image.Image, text: dict[str, str]) -> bytes:
    """PNG with tEXt metadata (prompt, seed, model, disclosure…)."""
    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


class Renderer:
    """A pipeline loaded once with `from_pretrained`, rendering jobs one at a time."""

    def __init__(self, spec: RenderSpec, device: str, scorer: NsfwScorer | None = None) -> None:
        import torch

        if spec.threads:
            torch.set_num_threads(spec.threads)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.spec, self.device, self.scorer = spec, device, scorer
        self.pipeline = self._load(spec, device)
        name = type(self.pipeline).__name__
        defaults = family_defaults(name, spec.model)
        size = defaults.size
        self.steps = spec.steps or defaults.steps
        self.guidance = defaults.guidance if spec.guidance is None else spec.guidance
        self.width, self.height = spec.width or size, spec.height or size
        self._accepts = set(inspect.signature(self.pipeline.__call__).parameters)
        self.conditions_face = self._load_ip_adapter()
        self._references: dict[str, Image.Image] = {}

    @staticmethod
    def _torch_dtype(dtype: DType, device: str, pipeline_hint: str) -> Any:
        import torch

        if dtype == "auto":
            if not device.startswith("cuda"):
                return torch.float32
            return torch.bfloat16 if "flux" in pipeline_hint.lower() else torch.float16
        return getattr(torch, dtype)

    def _load(self, spec: RenderSpec, device: str) -> Any:
        from diffusers import AutoPipelineForText2Image

        source = local_model_source(spec.model)
        dtype = self._torch_dtype(spec.dtype, device, spec.model)
        pipeline = AutoPipelineForText2Image.from_pretrained(
            source, dtype=dtype, local_files_only=True)
        if spec.scheduler:
            pipeline.scheduler = self._scheduler(pipeline, spec.scheduler)
        pipeline.set_progress_bar_config(disable=True)
        return pipeline.to(device)

    @staticmethod
    def _scheduler(pipeline: Any, name: str) -> Any:
        import diffusers

        compatible = {cls.__name__: cls for cls in pipeline.scheduler.compatibles}
        if name not in compatible:
            raise ConfigurationError(f"--scheduler {name!r} does not fit "
                                     f"{type(pipeline).__name__}; use one of "
                                     f"{', '.join(sorted(compatible))}")
        return getattr(diffusers, name).from_config(pipeline.scheduler.config)

    def _load_ip_adapter(self) -> bool:
        if not self.spec.ip_adapter:
            return False
        if not hasattr(self.pipeline, "load_ip_adapter"):
            return False
        weights = Path(self.spec.ip_adapter)
        self.pipeline.load_ip_adapter(str(weights.parent), subfolder="",
                                      weight_name=weights.name, local_files_only=True)
        return True

    def _reference(self, path: str) -> Image.Image:
        if path not in self._references:
            with Image.open(path) as image:
                self._references[path] = image.convert("RGB")
        return self._references[path]

    def generate(self, job: ImageJob, seed: int) -> Image.Image:
        """One image for this job at this seed (same seed, same pixels on the same device)."""
        import torch

        arguments: dict[str, Any] = {
            "prompt": job.prompt, "num_inference_steps": self.steps,
            "guidance_scale": self.guidance, "width": self.width, "height": self.height,
            "generator": torch.Generator(self.device).manual_seed(seed),
        }
        if "negative_prompt" in self._accepts and self.guidance > 1.0:
            arguments["negative_prompt"] = job.negative_prompt
        if self.conditions_face:
            # A job without a reference turns the adapter off (scale 0) for that image.
            scale = self.spec.ip_adapter_scale if job.reference else 0.0
            self.pipeline.set_ip_adapter_scale(scale)
            arguments["ip_adapter_image"] = (self._reference(job.reference) if job.reference
                                             else Image.new("RGB", (224, 224), (128, 128, 128)))
        image: Image.Image = self.pipeline(**arguments).images[0]
        return image

    def render(self, job: ImageJob) -> RenderOutcome:
        """Render, score, re-render with another seed while NSFW; save the PNG (or quarantine)."""
        score: float | None = None
        seed = job.seed
        for attempt in range(self.spec.nsfw_rerenders + 1):
            seed = (job.seed + attempt * NSFW_SEED_STRIDE) % (2**31 - 1)
            image = self.generate(job, seed)
            score = self.scorer.score(image) if self.scorer else None
            if score is None or score < self.spec.nsfw_threshold:
                self._save(job.output, image, job, seed, score)
                return RenderOutcome(job.job_id, "done", job.output, seed, score, attempt + 1)
        self._save(job.quarantine_output, image, job, seed, score)
        return RenderOutcome(job.job_id, "quarantined", job.quarantine_output, seed, score,
                             self.spec.nsfw_rerenders + 1,
                             error=f"NSFW score {score:.2f} ≥ {self.spec.nsfw_threshold} "
                                   f"after {self.spec.nsfw_rerenders + 1} renders")

    def _save(self, path: str, image: Image.Image, job: ImageJob, seed: int,
              score: float | None) -> None:
        text = {
            "prompt": job.prompt, "negative_prompt": job.negative_prompt, "seed": str(seed),
            "model": self.spec.model, "pipeline": type(self.pipeline).__name__,
            "steps": str(self.steps), "guidance_scale": str(self.guidance),
            "size": f"{self.width}x{self.height}",
            "scheduler": type(self.pipeline.scheduler).__name__,
            "face_reference": job.reference if self.conditions_face and job.reference else "",
            "nsfw_score": "" if score is None else f"{score:.4f}",
            "ai_generated": "true", "disclosure": AI_DISCLOSURE,
            "digital_source_type": IPTC_SYNTHETIC,
            "Software": f"Persona Foundry {__version__}", **job.metadata,
        }
        atomic_write_bytes(Path(path), png_bytes(image, text))
