"""Images/s: our worker pool (N processes, one per device) vs one plain diffusers pipeline.

Both load the same random-weight Stable Diffusion pipeline from a folder (random weights run at
the speed of trained ones). The baseline renders in this process with every core (or the GPU);
ours goes through the product path: spawned workers, job queue, NSFW check, PNG + metadata.
Steady-state throughput excludes model loading on both sides (a persona's month of images is
hundreds of images per load); our start-up (spawn + import + load) is reported separately.

    python bench/images.py                       # CPU: tiny architecture, 2 workers
    python bench/images.py --size sd15 --resolution 512 --steps 20 --images 40 --device cuda
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from diffusers import AutoPipelineForText2Image

from persona_foundry.images.executor import ProcessBackend, Supervisor, cpu_threads_per_worker
from persona_foundry.images.random_weights import save_random_pipeline
from persona_foundry.images.render import ImageJob, RenderSpec
from persona_foundry.images.worker import WorkerEvent

RESULTS = Path(__file__).parent / "results" / "images.json"
PROMPT = "photo of a woman in her thirties, auburn bob, at a café, natural light"


def plain_pipeline(model: Path, args: argparse.Namespace) -> float:
    """Images/s of one diffusers pipeline in this process (after one warm-up image)."""
    if args.device == "cpu":
        torch.set_num_threads(cpu_threads_per_worker(1))
    dtype = torch.float16 if args.device.startswith("cuda") else torch.float32
    pipeline = AutoPipelineForText2Image.from_pretrained(model, dtype=dtype,
                                                         local_files_only=True).to(args.device)
    pipeline.set_progress_bar_config(disable=True)

    def render(seed: int) -> None:
        pipeline(PROMPT, num_inference_steps=args.steps, height=args.resolution,
                 width=args.resolution, generator=torch.Generator(args.device).manual_seed(seed))

    render(0)
    started = time.perf_counter()
    for seed in range(args.images):
        render(seed + 1)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    return args.images / (time.perf_counter() - started)


def worker_pool(model: Path, args: argparse.Namespace, out: Path) -> dict[str, float]:
    """Images/s of our pool once every worker is ready, and its start-up time."""
    devices = ([f"cuda:{i}" for i in range(args.workers)] if args.device.startswith("cuda")
               else ["cpu"] * args.workers)
    spec = RenderSpec(model=str(model), steps=args.steps, width=args.resolution,
                      height=args.resolution, nsfw_check=not args.no_nsfw_check,
                      threads=cpu_threads_per_worker(args.workers) if args.device == "cpu"
                      else None)
    # One warm-up job per worker, then the measured ones.
    jobs = [ImageJob(f"j{i}", PROMPT, "blurry", i, str(out / f"{i}.png"), str(out / f"q{i}.png"))
            for i in range(args.images + args.workers)]
    ready: list[float] = []
    finished: list[float] = []

    def watch(event: WorkerEvent) -> None:
        if event.kind == "ready":
            ready.append(time.perf_counter())
        elif event.kind == "finished":
            finished.append(time.perf_counter())

    started = time.perf_counter()
    Supervisor(ProcessBackend(spec, devices), args.workers, watch).run(jobs)
    measured = finished[args.workers:]
    return {"images_per_s": (len(measured) - 1) / (measured[-1] - measured[0]),
            "startup_s": max(ready) - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=["tiny", "sd15"], default="tiny")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-nsfw-check", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = save_random_pipeline(Path(folder) / "model", args.size)
        baseline = plain_pipeline(model, args)
        ours = worker_pool(model, args, Path(folder) / "out")
    result = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(0),
        "architecture": args.size, "resolution": args.resolution, "steps": args.steps,
        "images": args.images, "workers": args.workers, "nsfw_check": not args.no_nsfw_check,
        "plain_pipeline_images_per_s": round(baseline, 3),
        "workers_images_per_s": round(ours["images_per_s"], 3),
        "speedup": round(ours["images_per_s"] / baseline, 3),
        "workers_startup_s": round(ours["startup_s"], 2),
    }
    print(f"plain diffusers pipeline, 1 process: {baseline:.2f} images/s")
    print(f"{args.workers} worker(s) on {args.device}: {ours['images_per_s']:.2f} images/s "
          f"({result['speedup']:.2f}x the plain pipeline; start-up {ours['startup_s']:.1f}s)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
