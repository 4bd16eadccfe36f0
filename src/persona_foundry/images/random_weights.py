"""Random-weight Stable Diffusion pipelines, saved with `save_pretrained`, for tests and benchmarks.

Random weights render noise at the same speed as trained ones, so a benchmark of a full-size
architecture needs no download; the tiny size makes tests run in well under a second per image.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Literal

ArchitectureSize = Literal["tiny", "sd15"]

# A byte-level vocabulary is enough for CLIP's BPE tokenizer to split any English prompt.
_SPECIAL_TOKENS = ["<|startoftext|>", "<|endoftext|>"]

_UNET: dict[str, dict[str, Any]] = {
    "tiny": {"block_out_channels": (32, 64), "layers_per_block": 1, "sample_size": 16,
             "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
             "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
             "cross_attention_dim": 32, "attention_head_dim": 8},
    "sd15": {"block_out_channels": (320, 640, 1280, 1280), "layers_per_block": 2,
             "sample_size": 64, "cross_attention_dim": 768, "attention_head_dim": 8,
             "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                  "CrossAttnDownBlock2D", "DownBlock2D"),
             "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                "CrossAttnUpBlock2D")},
}
_VAE: dict[str, dict[str, Any]] = {
    "tiny": {"block_out_channels": (8, 8, 16, 16), "norm_num_groups": 4, "sample_size": 128},
    "sd15": {"block_out_channels": (128, 256, 512, 512), "norm_num_groups": 32,
             "sample_size": 512},
}
_TEXT: dict[str, dict[str, Any]] = {
    "tiny": {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
             "num_attention_heads": 4, "projection_dim": 32},
    "sd15": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
             "num_attention_heads": 12, "projection_dim": 768},
}


def _write_tokenizer(folder: Path) -> Any:
    from transformers import CLIPTokenizer

    letters = [chr(c) for c in range(33, 127)]
    vocab = {token: index for index, token in
             enumerate([*letters, *(f"{c}</w>" for c in letters), *_SPECIAL_TOKENS])}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                         model_max_length=77)


def save_random_pipeline(folder: Path, size: ArchitectureSize = "tiny", seed: int = 0) -> Path:
    """Build a Stable Diffusion pipeline of this architecture with random weights; save it."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    vae_blocks = len(_VAE[size]["block_out_channels"])
    unet = UNet2DConditionModel(in_channels=4, out_channels=4, **_UNET[size])
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * vae_blocks,
        up_block_types=("UpDecoderBlock2D",) * vae_blocks, **_VAE[size],
    )
    with tempfile.TemporaryDirectory() as source:
        tokenizer = _write_tokenizer(Path(source))
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, pad_token_id=1, vocab_size=max(1000, len(tokenizer)),
        layer_norm_eps=1e-5, **_TEXT[size],
    ))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                       beta_schedule="scaled_linear", steps_offset=1)
    pipeline: Any = StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, image_encoder=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder)
    return folder


def save_random_ip_adapter(folder: Path, pipeline_folder: Path, seed: int = 0) -> Path:
    """An IP-Adapter (image projection, per-layer key/value weights, CLIP image encoder) that fits
    the pipeline saved in `pipeline_folder`; returns the weight file's path."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    unet_config = UNet2DConditionModel.load_config(pipeline_folder / "unet")
    cross_dim = int(unet_config["cross_attention_dim"])
    channels = list(unet_config["block_out_channels"])
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, image_size=32, patch_size=4,
    ))
    encoder.save_pretrained(folder / "image_encoder")
    unet = UNet2DConditionModel.from_pretrained(pipeline_folder / "unet")
    weights = {
        "image_proj.proj.weight": torch.randn(4 * cross_dim, 32) * 0.02,
        "image_proj.proj.bias": torch.zeros(4 * cross_dim),
        "image_proj.norm.weight": torch.ones(cross_dim),
        "image_proj.norm.bias": torch.zeros(cross_dim),
    }
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        hidden = _hidden_size(name, channels)
        for kind in ("to_k_ip", "to_v_ip"):
            weights[f"ip_adapter.{key_id}.{kind}.weight"] = torch.randn(hidden, cross_dim) * 0.02
        key_id += 2
    path = folder / "ip-adapter.safetensors"
    save_file(weights, str(path))
    return path


def _hidden_size(processor_name: str, channels: list[int]) -> int:
    if processor_name.startswith("mid_block"):
        return channels[-1]
    block = int(processor_name.split(".")[1])
    return list(reversed(channels))[block] if processor_name.startswith("up_blocks") \
        else channels[block]
