"""Tweet files and cards → image jobs; rendered images → their tweet records and calendar slots.

Images go to `out/images/{persona}/{tweet_id}.png` (quarantined ones to `…/quarantine/`); both
names are slugs, so nothing from a tweet file or a model can leave the output folder. A rerun
finds what is already there: made images are (re)attached, quarantined ones reported, neither
rendered again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..errors import InputError, PersonaFoundryError
from ..files import safe_slug
from ..profile import PersonaProfile, load_profile
from ..source_image import load_source_image
from ..store import Calendar, OutputLayout, TweetFile, TweetRecord, read_tweet_file, update_calendar
from ..store.tweet_file import ImageFacts, update_tweet_file
from .prompts import PORTRAIT_SCENE, compose_prompt, image_seed, persona_base_seed
from .render import ImageJob, RenderOutcome

QUARANTINE_DIR = "quarantine"


@dataclass(frozen=True)
class ImageTarget:
    """Where one job's result is recorded."""

    job: ImageJob
    tweet_file: Path | None = None
    slot_id: str | None = None
    calendar_file: Path | None = None


@dataclass
class ImagePlan:
    """Jobs to render, images already made or quarantined, and inputs that could not be used."""

    out_dir: Path
    to_render: list[ImageTarget] = field(default_factory=list)
    made: list[ImageTarget] = field(default_factory=list)
    quarantined: list[ImageTarget] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, target: ImageTarget) -> None:
        """File the target by what is on disk already."""
        if Path(target.job.output).is_file():
            self.made.append(target)
        elif Path(target.job.quarantine_output).is_file():
            self.quarantined.append(target)
        else:
            self.to_render.append(target)


@dataclass(frozen=True)
class JobFactory:
    """Prompts, seeds and paths for one persona's images."""

    profile: PersonaProfile | None
    persona_key: str
    persona_name: str
    out_dir: Path
    reference: str | None
    user_seed: int
    safe_for_work: bool

    def job(self, item_id: str, scene: str, extra: dict[str, str]) -> ImageJob:
        """The job for one image of this persona."""
        visual = self.profile.visual if self.profile else None
        prompt = compose_prompt(scene, visual, f"photo of {self.persona_name}",
                                safe_for_work=self.safe_for_work)
        name = f"{safe_slug(item_id, fallback='image')}.png"
        folder = OutputLayout(self.out_dir).images_for(self.persona_key)
        return ImageJob(
            job_id=f"{self.persona_key}/{name}", prompt=prompt.prompt,
            negative_prompt=prompt.negative_prompt,
            seed=image_seed(persona_base_seed(self.persona_key, self.user_seed), item_id),
            output=str(folder / name), quarantine_output=str(folder / QUARANTINE_DIR / name),
            reference=self.reference, metadata={"persona": self.persona_name, **extra},
        )


def checked_reference(path: Path | None) -> str | None:
    """The --reference image's full path; a missing or corrupt one is an InputError naming it."""
    if path is None:
        return None
    load_source_image(path)
    return str(path.resolve())


def factory_for(card: Path | None, persona_key: str, persona_name: str, out_dir: Path,
                reference: str | None, user_seed: int, safe_for_work: bool) -> JobFactory:
    """A persona's job factory: its visual profile and face reference when its card is there."""
    profile = load_profile(card) if card and card.is_file() else None
    face = reference or (str(profile.source_image) if profile and profile.source_image else None)
    return JobFactory(profile, persona_key, profile.name if profile else persona_name, out_dir,
                      face, user_seed, safe_for_work)


def plan_tweet_images(tweet_files: list[Path], out_dir: Path | None, reference: Path | None,
                      user_seed: int, safe_for_work: bool) -> ImagePlan:
    """One job per image post (format `image` with an image_prompt) in these tweet files."""
    default = Path("out")
    plan = ImagePlan(out_dir or (OutputLayout.of_file(tweet_files[0]).root if tweet_files
                                 else default))
    layout = OutputLayout(plan.out_dir)
    face = checked_reference(reference)
    for path in tweet_files:
        try:
            data = read_tweet_file(path)
            key = safe_slug(data.persona_key or data.persona or path.stem)
            factory = factory_for(layout.card_path(key), key, data.persona or key,
                                  plan.out_dir, face, user_seed, safe_for_work)
        except PersonaFoundryError as exc:
            plan.problems.append(str(exc))
            continue
        _plan_posts(plan, factory, path, data, layout)
    return plan


def _plan_posts(plan: ImagePlan, factory: JobFactory, path: Path, data: TweetFile,
                layout: OutputLayout) -> None:
    calendar = layout.calendar_path(factory.persona_key, data.month) if data.month else None
    for tweet in data.tweets:
        if tweet.format != "image" or not tweet.image_prompt.strip():
            continue
        tweet_id = tweet.id or tweet.slot_id
        job = factory.job(tweet_id, tweet.image_prompt, {"tweet_id": tweet_id})
        plan.add(ImageTarget(job, path, tweet.slot_id, calendar))


def plan_portraits(card: Path, count: int, out_dir: Path, reference: Path | None,
                   user_seed: int, safe_for_work: bool) -> ImagePlan:
    """`count` reference shots of the persona: `out/images/{persona}/portrait_{n}.png`."""
    plan = ImagePlan(out_dir)
    profile = load_profile(card)
    factory = factory_for(card, profile.key, profile.name, out_dir, checked_reference(reference),
                          user_seed, safe_for_work)
    for number in range(1, count + 1):
        plan.add(ImageTarget(factory.job(f"portrait_{number}", PORTRAIT_SCENE,
                                         {"shot": f"portrait {number}"})))
    return plan


def _tweet_image_fields(record: TweetRecord, outcome: RenderOutcome) -> None:
    if outcome.status == "done":
        record.image_path, record.image_status = outcome.path, None
        record.image = ImageFacts(seed=outcome.seed, nsfw_score=outcome.nsfw_score,
                                  renders=outcome.renders)
    else:
        record.image_path, record.image_status = None, outcome.status
        record.image = ImageFacts(error=outcome.error)


def record_outcomes(targets: list[ImageTarget], outcomes: dict[str, RenderOutcome]) -> list[str]:
    """Write each outcome into its tweet record and calendar slot (locked, atomic); say which
    tweet files could not take them (moved or broken during the run: the images stay)."""
    by_file: dict[Path, list[ImageTarget]] = {}
    for target in targets:
        if target.tweet_file and target.job.job_id in outcomes:
            by_file.setdefault(target.tweet_file, []).append(target)
    problems = []
    for tweet_file, file_targets in by_file.items():
        results = {t.job.metadata.get("tweet_id"): outcomes[t.job.job_id] for t in file_targets}

        def attach(data: TweetFile, results: dict[str | None, RenderOutcome] = results) -> None:
            for record in data.tweets:
                if record.id in results:
                    _tweet_image_fields(record, results[record.id])

        try:
            update_tweet_file(tweet_file, attach)
        except InputError as exc:
            problems.append(f"{exc}; its images are kept and a rerun attaches them")
            continue
        _record_in_calendar(file_targets, outcomes)
    return problems


def _record_in_calendar(targets: list[ImageTarget], outcomes: dict[str, RenderOutcome]) -> None:
    calendar_file = targets[0].calendar_file
    if calendar_file is None or not calendar_file.is_file():
        return
    paths = {t.slot_id: outcomes[t.job.job_id] for t in targets if t.slot_id}

    def attach(calendar: Calendar) -> None:
        for slot in calendar.slots:
            if slot.id in paths:
                outcome = paths[slot.id]
                slot.image_path = outcome.path if outcome.status == "done" else None

    update_calendar(calendar_file, attach)


def outcome_on_disk(target: ImageTarget) -> RenderOutcome:
    """The outcome of an image an earlier run made or quarantined, read back from its PNG text."""
    done = Path(target.job.output).is_file()
    path = target.job.output if done else target.job.quarantine_output
    with Image.open(path) as image:
        text: dict[str, str] = dict(getattr(image, "text", {}))
    seed = int(text["seed"]) if text.get("seed", "").isdigit() else None
    score = float(text["nsfw_score"]) if text.get("nsfw_score") else None
    if done:
        return RenderOutcome(target.job.job_id, "done", path, seed, score, renders=0)
    return RenderOutcome(target.job.job_id, "quarantined", path, seed, score, renders=0,
                         error="quarantined by an earlier run")
