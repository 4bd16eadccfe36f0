"""Post checks: weighted length, language, hashtags, emoji, voice, openings, and the
near-duplicate threshold."""

from __future__ import annotations

import pytest

from persona_foundry.textchecks import (
    NEAR_DUPLICATE_JACCARD,
    DuplicateIndex,
    PairwiseIndex,
    PostRules,
    jaccard,
    opening,
    rule_problems,
    set_problems,
    weighted_length,
)

REWORDINGS = [
    ("Today's CO2 scrubber test: boring. Boring is good.",
     "Today's CO2 scrubber test: boring. Boring is great."),
    ("Thermals were generous today. 2 hours, zero engine.",
     "Thermals were generous today: 3 hours and zero engine!"),
    ("My starter is older than some of my interns.",
     "My sourdough starter is older than most of my interns lol"),
]
SAME_TOPIC_DIFFERENT_POSTS = [
    ("Thermals were generous today. 2 hours, zero engine.",
     "Landed after a long glide, the valley looked unreal from up there."),
    ("Today's CO2 scrubber test: boring. Boring is good.",
     "New pressure test on the scrubber rig today, results look solid."),
    ("My starter is older than some of my interns.",
     "Tried a rye loaf this weekend. Dense, sour, and gone in an hour."),
]
RULES = PostRules(language="English", max_hashtags=1, emoji_use="rare")
# The folder-wide LSH index and the exact one set_problems uses for a single reply must agree.
INDEXES = pytest.mark.parametrize("index_kind", [DuplicateIndex, PairwiseIndex])


def test_weighted_length_follows_twitter_text() -> None:
    assert weighted_length("a" * 280) == 280
    assert weighted_length("日本" * 70) == 280  # CJK counts 2
    assert weighted_length("see https://example.com/" + "x" * 200) == 4 + 23  # a URL is 23
    assert weighted_length("🙂") == 2


@INDEXES
@pytest.mark.parametrize(("first", "second"), REWORDINGS)
def test_rewordings_are_near_duplicates(
    first: str, second: str, index_kind: type[DuplicateIndex | PairwiseIndex]
) -> None:
    assert jaccard(first, second) >= NEAR_DUPLICATE_JACCARD
    index = index_kind()
    index.add(first)
    assert index.find(second) == first


@INDEXES
@pytest.mark.parametrize(("first", "second"), SAME_TOPIC_DIFFERENT_POSTS)
def test_different_posts_on_one_topic_are_not(
    first: str, second: str, index_kind: type[DuplicateIndex | PairwiseIndex]
) -> None:
    assert jaccard(first, second) < 0.15
    index = index_kind()
    index.add(first)
    assert index.find(second) is None


@INDEXES
def test_exact_duplicates_ignore_case_punctuation_and_urls(
    index_kind: type[DuplicateIndex | PairwiseIndex]
) -> None:
    index = index_kind()
    index.add("Big day at the field! https://t.co/abc")
    assert index.find("big day at the field") is not None
    index.add("big day at the field")  # the same text again is not remembered twice
    assert index.find("Another day, another field") is None


def test_rule_problems() -> None:
    assert rule_problems("Lovely morning at the airfield, coffee in hand.", RULES) == []
    problems = rule_problems("x" * 281, RULES)
    assert any("weighted length 281" in p for p in problems)
    assert any("2 hashtags" in p for p in rule_problems("Flying today #a #b", RULES))
    assert any("2 emoji" in p for p in rule_problems("Flying today 🙂🙂", RULES))
    german = "Heute war der Himmel über dem Flugplatz unglaublich klar und ruhig."
    assert any("'de', not English" in p for p in rule_problems(german, RULES))
    # Short or uncertain text is never blamed on the language detector.
    assert rule_problems("lol ok fine, pancakes it is", RULES) == []


@pytest.mark.parametrize("text", [
    "Boring is good. 2.5 hours, zero engine!",
    "see example.com today",
    "read https://x.co/abc now",
    "line one\r\nline two",
    "dots... and more. Done",
    "a.b",
    "café au lait ☕",
    "" + "x" * 300,
])
def test_weighted_length_fast_path_agrees_with_twitter_text(text: str) -> None:
    from twitter_text import parse_tweet

    assert weighted_length(text) == parse_tweet(text).weightedLength


VOICED = PostRules(language="English", max_hashtags=5, emoji_use="rare", persona_name="Ms. Ly Thai")
# What the default offline model wrote for a third of 24 posts (bench/quality.py, issue 20).
ABOUT_THE_PERSONA = [
    "Ms. Ly Thai is planning a hiking trip to Hoi An, Vietnam. She and her friends are excited!",
    "Ly Thai is celebrating New Year's Eve with her friends and family.",
    "Hiking in Hoi An, Vietnam: Ms. Ly Thai is planning a hiking trip with her friends.",
    "Ms. Thai and her friends are planning to celebrate with dinner at a local restaurant.",
]
BY_THE_PERSONA = [
    "I'm planning a hiking trip to Hoi An. I can't wait! #Hiking",
    "Hi! I'm Ms. Ly Thai, and I write about the forests of Vietnam. Say hello!",
    "It's me, Ly Thai: back from the mountains with 300 photos to sort.",
    "Spicy noodles for breakfast, then the park. Thai food wins every morning.",
]


@pytest.mark.parametrize("post", ABOUT_THE_PERSONA)
def test_a_post_naming_its_persona_in_the_third_person_fails_with_the_reason(post: str) -> None:
    (problem,) = rule_problems(post, VOICED)
    assert "names Ms. Ly Thai in the third person" in problem and "first person" in problem
    assert rule_problems(post, RULES) == []  # no persona name given: not checked


@pytest.mark.parametrize("post", BY_THE_PERSONA)
def test_a_post_by_its_persona_passes_the_voice_check(post: str) -> None:
    assert rule_problems(post, VOICED) == []


def test_posts_of_a_set_that_open_alike_fail_naming_the_first() -> None:
    posts = ["I can't wait to see the rice terraces at dawn! #Travel",
             "Finished a novel about the Mekong delta last night.",
             "I can't wait for the book fair this weekend, so many stalls.",
             "I can, and I will, climb Fansipan before the year ends."]
    assert opening(posts[0]) == "i can t" == opening("#Travel I can't")
    assert jaccard(posts[0], posts[2]) < NEAR_DUPLICATE_JACCARD  # not a near duplicate
    problems = set_problems(posts, None, labels=["a", "b", "c", "d"], openings=True)
    assert problems == {2: ["opens like a ('i can t…'): start differently"]}
    assert set_problems(posts, None) == {}  # openings are checked only when asked
