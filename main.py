"""The original tool's command line, mapped onto `persona-foundry persona`.

    python main.py --generate-persona --image x.png --persona-output personas/x.json
    python main.py --generate-persona --images a.png b.png --nsfw-level disabled
"""

from __future__ import annotations

import argparse
import sys

from persona_foundry.cli import app

IMAGES_ONLY = ("apply to image rendering: run `persona-foundry images TWEET_FILE… --model M "
               "--num-gpus N` (or --single-gpu)")


def legacy_argv(argv: list[str]) -> list[str]:
    """Translate the original flags into `persona-foundry` arguments."""
    parser = argparse.ArgumentParser(prog="main.py", description=__doc__)
    parser.add_argument("--generate-persona", action="store_true", required=True)
    parser.add_argument("--image")
    parser.add_argument("--images", nargs="+")
    parser.add_argument("--persona-output")
    parser.add_argument("--output-dir", default="out")
    parser.add_argument("--nsfw-level", default="off")
    parser.add_argument("--language", default="English")
    parser.add_argument("--max-concurrent", type=int)
    parser.add_argument("--num-gpus", type=int)
    parser.add_argument("--single-gpu", action="store_true")
    args = parser.parse_args(argv)
    if args.num_gpus is not None or args.single_gpu:
        parser.error(f"--num-gpus/--single-gpu {IMAGES_ONLY}")
    images = ([args.image] if args.image else []) + (args.images or [])
    if not images:
        parser.error("give --image PATH or --images PATH [PATH ...]")
    out = ["persona", *images, "--nsfw-level", args.nsfw_level, "--language", args.language]
    if args.persona_output and len(images) == 1:
        out += ["--persona-output", args.persona_output]
    else:
        out += ["--out", args.persona_output or args.output_dir]
    if args.max_concurrent is not None:
        out += ["--max-concurrent", str(args.max_concurrent)]
    return out


if __name__ == "__main__":
    app(legacy_argv(sys.argv[1:]))
