"""Visual facts from a real photo, and the NSFW rule for apparent minors."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import EXAMPLE_IMAGE
from persona_foundry.errors import SafetyError
from persona_foundry.source_image import (
    FaceFact,
    VisualFacts,
    check_nsfw_allowed,
    extract_visual_facts,
    image_data_url,
    load_source_image,
)


def test_real_photo_gives_a_face_with_apparent_age_and_gender() -> None:
    facts = extract_visual_facts(load_source_image(EXAMPLE_IMAGE))
    assert (facts.width, facts.height) == (512, 512)
    assert len(facts.faces) == 1
    face = facts.faces[0]
    assert face.apparent_gender == "female"
    assert 20 <= face.apparent_age <= 50
    assert len(facts.palette) >= 3
    text = facts.describe()
    assert "apparent gender female" in text and "dominant colours" in text


def test_flat_image_has_no_face(make_image) -> None:
    facts = extract_visual_facts(load_source_image(make_image()))
    assert facts.faces == []
    assert "no face detected" in facts.describe()


def _facts(age: int | None) -> VisualFacts:
    faces = [] if age is None else [FaceFact(box=(0, 0, 9, 9), apparent_gender="female",
                                             gender_confidence=90, apparent_age=age,
                                             age_confidence=50)]
    return VisualFacts(width=9, height=9, orientation="square", brightness=0.5,
                       warmth="neutral", palette=[], faces=faces)


@pytest.mark.parametrize("level", ["suggestive", "explicit"])
def test_nsfw_refused_for_apparent_minors(level: str) -> None:
    with pytest.raises(SafetyError, match="looks about 15 years old"):
        check_nsfw_allowed(_facts(15), level, Path("kid.png"))


def test_nsfw_allowed_for_adults_and_off_always() -> None:
    check_nsfw_allowed(_facts(30), "explicit", Path("a.png"))
    check_nsfw_allowed(_facts(15), "off", Path("a.png"))
    check_nsfw_allowed(_facts(None), "explicit", Path("a.png"))


def test_data_url_is_downscaled_jpeg(tmp_path: Path) -> None:
    from PIL import Image

    big = tmp_path / "big.png"
    Image.new("RGB", (3000, 2000), (10, 20, 30)).save(big)
    url = image_data_url(load_source_image(big))
    assert url.startswith("data:image/jpeg;base64,")
    assert len(url) < 200_000
