"""Post images: a tiny random diffusers pipeline saved to a folder, loaded with from_pretrained,
rendered by real worker processes (and Ray actors) on the CPU."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from openai_server import FakeOpenAIServer
from persona_foundry.calendar import calendar_path, read_calendar
from persona_foundry.cli import app
from persona_foundry.images.executor import (
    MAX_JOB_ATTEMPTS,
    ExecutorOptions,
    JobBook,
    ProcessBackend,
    Supervisor,
)
from persona_foundry.images.jobs import plan_tweet_images, record_outcomes
from persona_foundry.images.prompts import compose_prompt, image_seed, persona_base_seed
from persona_foundry.images.random_weights import save_random_ip_adapter, save_random_pipeline
from persona_foundry.images.render import (
    ImageJob,
    Renderer,
    RenderOutcome,
    RenderSpec,
    family_defaults,
)
from persona_foundry.images.runner import render_plan
from persona_foundry.images.worker import WorkerEvent
from persona_foundry.stages.visual import VisualProfile
from stage_replies import content_reply
from test_tweets import MONTH, env, run_tweets

SIZE = ["--width", "64", "--height", "64", "--steps", "2"]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(scope="session")
def tiny_ip_adapter(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    return save_random_ip_adapter(tmp_path_factory.mktemp("models") / "ip-adapter", tiny_model)


@pytest.fixture(scope="module")
def posts_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A card (made from a face image) and a month of posts, via the real pipeline and server."""
    out = tmp_path_factory.mktemp("posts") / "out"
    face = out.parent / "ava.png"
    Image.new("RGB", (96, 128), (190, 120, 90)).save(face)
    server = FakeOpenAIServer(content_reply).start()
    try:
        result = CliRunner().invoke(app, ["persona", str(face), "--out", str(out)],
                                    env=env(server))
        assert result.exit_code == 0, result.output
        run_tweets(server, [out / "personas" / "ava_persona.json"], out, count=20)
    finally:
        server.stop()
    return out


@pytest.fixture
def out(posts_folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(posts_folder, copy)
    return copy


def tweet_file(out: Path) -> Path:
    (path,) = sorted((out / "tweets").glob("ava_*.json"))
    return path


def image_posts(out: Path) -> list[dict[str, object]]:
    tweets = json.loads(tweet_file(out).read_text(encoding="utf-8"))["tweets"]
    return [t for t in tweets if t["format"] == "image"]


def test_images_cli_renders_every_image_post_and_a_rerun_renders_none(
        out: Path, tiny_model: Path) -> None:
    args = ["images", str(tweet_file(out)), "--model", str(tiny_model), "--num-gpus", "2", *SIZE]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    posts = image_posts(out)
    assert len(posts) == 5
    calendar = read_calendar(calendar_path(out, "ava", MONTH))
    for post in posts:
        path = out / "images" / "ava" / f"{post['id']}.png"
        assert post["image_path"] == str(path)
        assert calendar.slot(str(post["slot_id"])).image_path == str(path)
        with Image.open(path) as image:
            text = dict(image.text)  # type: ignore[attr-defined]
            assert image.size == (64, 64)
        assert post["image_prompt"] in text["prompt"]
        assert text["prompt"].startswith("photo of a woman in her thirties")  # the look first
        assert "nsfw" in text["negative_prompt"] and text["steps"] == "2"
        assert text["model"] == str(tiny_model) and text["ai_generated"] == "true"
        assert "AI-generated" in text["disclosure"] and text["tweet_id"] == post["id"]
        assert int(text["seed"]) == post["image"]["seed"]  # type: ignore[index]
    output = " ".join(result.output.split())
    assert "2 worker process(es) on cpu" in output and "no GPU visible" in output

    made = {p: p.stat().st_mtime_ns for p in (out / "images" / "ava").glob("*.png")}
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "made 5 (0 rendered now)" in " ".join(again.output.split())
    assert {p: p.stat().st_mtime_ns for p in made} == made
    assert [p["image_path"] for p in image_posts(out)] == [p["image_path"] for p in posts]


def test_same_seed_same_pixels_and_seeds_differ_per_post(tiny_model: Path,
                                                         tmp_path: Path) -> None:
    renderer = Renderer(RenderSpec(model=str(tiny_model), steps=2, width=64, height=64,
                                   threads=1), "cpu")
    job = ImageJob("a", "a portrait", "blurry", 7, str(tmp_path / "a.png"), str(tmp_path / "q"))
    first, second = (np.asarray(renderer.generate(job, 7)) for _ in range(2))
    assert np.array_equal(first, second)
    assert not np.array_equal(first, np.asarray(renderer.generate(job, 8)))

    base = persona_base_seed("ava")
    assert base == persona_base_seed("ava") != persona_base_seed("ava", user_seed=1)
    assert image_seed(base, "20261201-0835") == image_seed(base, "20261201-0835")
    assert image_seed(base, "20261201-0835") != image_seed(base, "20261201-1939")


def test_a_crashed_worker_is_reported_and_its_job_finishes_elsewhere(
        tiny_model: Path, tmp_path: Path) -> None:
    # Enough steps that the kill lands mid-render.
    spec = RenderSpec(model=str(tiny_model), steps=40, width=128, height=128, threads=1,
                      nsfw_check=False)
    jobs = [ImageJob(f"job{i}", "a portrait", "", i, str(tmp_path / f"{i}.png"),
                     str(tmp_path / "q" / f"{i}.png")) for i in range(4)]
    events: list[WorkerEvent] = []
    killed: dict[str, int] = {}

    def kill_first_started(event: WorkerEvent) -> None:
        events.append(event)
        if event.kind == "started" and not killed and event.pid and event.job_id:
            killed[event.job_id] = event.worker
            os.kill(event.pid, signal.SIGKILL)

    outcomes = Supervisor(ProcessBackend(spec, ["cpu", "cpu"]), 2, kill_first_started).run(jobs)

    assert [o.status for o in outcomes] == ["done"] * 4
    assert all(Path(job.output).is_file() for job in jobs)
    crashes = [e for e in events if e.kind == "crashed"]
    assert len(crashes) == 1 and "signal 9" in crashes[0].detail
    (job_id, worker), = killed.items()
    assert crashes[0].worker == worker
    assert next(o for o in outcomes if o.job_id == job_id).attempts == 2


def test_a_tweet_file_gone_during_the_run_is_reported_and_nothing_is_lost(out: Path) -> None:
    plan = plan_tweet_images([tweet_file(out)], out, None, 0, safe_for_work=True)
    outcomes = {t.job.job_id: RenderOutcome(t.job.job_id, "done", t.job.output)
                for t in plan.to_render}
    tweet_file(out).rename(out / "moved.json")
    (problem,) = record_outcomes(plan.to_render, outcomes)
    assert "file not found" in problem and "a rerun attaches them" in problem


def test_job_book_retries_lost_jobs_on_other_workers_then_gives_up() -> None:
    job = ImageJob("j", "p", "", 1, "o.png", "q.png")
    book = JobBook([job])
    assert book.take(0, others_alive=True) is job
    book.lost(job, 0, "out of memory")
    assert book.take(0, others_alive=True) is None  # left for another worker
    assert book.take(0, others_alive=False) is job  # unless no other worker is alive
    for attempt in range(MAX_JOB_ATTEMPTS - 1):
        book.lost(job, 1, "crashed")
        if attempt < MAX_JOB_ATTEMPTS - 2:
            assert book.take(2, others_alive=True) is job
    assert book.finished and book.outcomes["j"].status == "failed"
    assert book.outcomes["j"].error == "crashed"
    assert not book.record(RenderOutcome("j", "done"))  # a late duplicate changes nothing


def test_missing_model_is_a_clear_error_naming_folder_and_cache(out: Path,
                                                                tiny_model: Path) -> None:
    for model in (str(out / "no-such-model"), "someone/not-in-cache"):
        result = CliRunner().invoke(app, ["images", str(tweet_file(out)), "--model", model])
        assert result.exit_code == 2
        message = "".join(result.output.split())  # rich wraps long paths anywhere
        assert "neitheralocalfoldernoramodelinthelocalHuggingFacecache" in message
        assert model in message
    missing_adapter = CliRunner().invoke(app, ["images", str(tweet_file(out)), "--model",
                                               str(tiny_model), "--ip-adapter",
                                               str(out / "no.bin")])
    assert missing_adapter.exit_code == 2
    assert "no.bin: not a file" in " ".join(missing_adapter.output.split())
    assert not (out / "images").exists()


def test_nsfw_over_threshold_is_rerendered_then_quarantined_and_not_attached(
        out: Path, tiny_model: Path) -> None:
    # Threshold 0: every image "scores over" it, so the real classifier drives the safety path.
    plan = plan_tweet_images([tweet_file(out)], out, None, 0, safe_for_work=True)
    spec = RenderSpec(model=str(tiny_model), steps=2, width=64, height=64, nsfw_threshold=0.0)
    summary = render_plan(plan, spec, ExecutorOptions(num_gpus=1))

    assert summary.count("quarantined") == len(plan.to_render) and summary.exit_code == 0
    for outcome in summary.outcomes.values():
        assert outcome.renders == 3 and outcome.nsfw_score is not None
        assert outcome.path and "/quarantine/" in outcome.path and Path(outcome.path).is_file()
    for post in image_posts(out):
        assert "image_path" not in post and post["image_status"] == "quarantined"
    calendar = read_calendar(calendar_path(out, "ava", MONTH))
    assert all(slot.image_path is None for slot in calendar.slots)
    assert not list((out / "images" / "ava").glob("*.png"))

    rerun = render_plan(plan_tweet_images([tweet_file(out)], out, None, 0, True), spec,
                        ExecutorOptions(num_gpus=1))
    assert rerun.rendered == 0 and rerun.count("quarantined") == len(plan.to_render)


def test_ip_adapter_conditions_each_image_on_the_reference_face(
        tiny_model: Path, tiny_ip_adapter: Path, tmp_path: Path) -> None:
    faces = []
    for name, colour in (("a.png", (230, 40, 40)), ("b.png", (20, 40, 230))):
        Image.new("RGB", (64, 64), colour).save(tmp_path / name)
        faces.append(str(tmp_path / name))
    spec = RenderSpec(model=str(tiny_model), steps=2, width=64, height=64, threads=1,
                      ip_adapter=str(tiny_ip_adapter), ip_adapter_scale=1.0, nsfw_check=False)
    renderer = Renderer(spec, "cpu")
    assert renderer.conditions_face

    def pixels(reference: str | None) -> np.ndarray:
        job = ImageJob("j", "a portrait", "", 3, "o.png", "q.png", reference=reference)
        return np.asarray(renderer.generate(job, 3), dtype=np.int16)

    with_a, with_b, without = pixels(faces[0]), pixels(faces[1]), pixels(None)
    assert np.abs(with_a - with_b).mean() > 0.5
    plain = Renderer(RenderSpec(model=str(tiny_model), steps=2, width=64, height=64,
                                threads=1, nsfw_check=False), "cpu")
    no_adapter = np.asarray(plain.generate(ImageJob("j", "a portrait", "", 3, "o", "q"), 3),
                            dtype=np.int16)
    assert np.abs(without - no_adapter).max() <= 1  # no reference: the adapter is off


def test_ray_executor_renders_on_a_local_ray_runtime(out: Path, tiny_model: Path) -> None:
    plan = plan_tweet_images([tweet_file(out)], out, None, 0, safe_for_work=True)
    spec = RenderSpec(model=str(tiny_model), steps=2, width=64, height=64, threads=1)
    summary = render_plan(plan, spec, ExecutorOptions(kind="ray", num_gpus=2))

    assert summary.count("done") == len(plan.to_render) > 0, summary.outcomes
    assert summary.workers == "2 Ray actor(s) on CPU"
    assert all(post.get("image_path") for post in image_posts(out))


def test_portrait_cli_makes_reference_shots(out: Path, tiny_model: Path) -> None:
    card = out / "personas" / "ava_persona.json"
    result = CliRunner().invoke(app, ["portrait", str(card), "--model", str(tiny_model),
                                      "--count", "2", "--out", str(out), *SIZE])
    assert result.exit_code == 0, result.output
    for number in (1, 2):
        with Image.open(out / "images" / "ava" / f"portrait_{number}.png") as image:
            text = dict(image.text)  # type: ignore[attr-defined]
        assert "portrait photo" in text["prompt"] and text["shot"] == f"portrait {number}"
        assert text["face_reference"] == ""  # no IP-Adapter given: nothing conditioned


def test_bad_inputs_are_reported_and_the_rest_still_renders(out: Path, tiny_model: Path,
                                                            tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    result = CliRunner().invoke(app, ["images", str(broken), str(tmp_path / "missing.json"),
                                      str(tweet_file(out)), "--model", str(tiny_model),
                                      "--out", str(out), *SIZE])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "broken.json: not a tweet file" in output and "missing.json: file not found" in output
    assert all(post.get("image_path") for post in image_posts(out))

    corrupt = tmp_path / "face.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    result = CliRunner().invoke(app, ["images", str(tweet_file(out)), "--model", str(tiny_model),
                                      "--reference", str(corrupt)])
    assert result.exit_code == 2 and "face.png" in result.output


def test_prompt_puts_the_person_first_and_family_defaults_fit_the_model() -> None:
    visual = VisualProfile(
        appearance="a", signature_style="red coat", consistent_details=["mole on left cheek"],
        photo_style="35mm, natural light", prompt_base="woman, 30s, auburn bob",
        negative_prompt="cartoon")
    prompt = compose_prompt("at a café", visual, "photo of Ava", safe_for_work=True)
    assert prompt.prompt == ("woman, 30s, auburn bob, at a café, mole on left cheek, red coat, "
                             "35mm, natural light")
    assert prompt.negative_prompt.startswith("cartoon,") and "nsfw" in prompt.negative_prompt
    assert "nsfw" not in compose_prompt("x", None, "Ava", safe_for_work=False).negative_prompt
    assert family_defaults("StableDiffusionXLPipeline", "stabilityai/sdxl-turbo").steps == 1
    assert family_defaults("StableDiffusionXLPipeline", "/m/sdxl-base").size == 1024
    assert family_defaults("FluxPipeline", "black-forest-labs/FLUX.1-schnell").steps == 4
    assert family_defaults("StableDiffusionPipeline", "/m/sd15").guidance == 7.5
