"""Stage 3's posts and greetings pass the post checks, and a failing set is re-asked."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from conftest import server_settings
from openai_server import Reply
from persona_foundry.pipeline import PersonaRunOptions, generate_personas
from persona_foundry.stages.examples import POST_RULES_KEY, ExampleTweets
from persona_foundry.textchecks import PostRules, fit_weighted, set_problems, weighted_length
from stage_replies import EXAMPLES, schema_name, valid_reply

RULES = PostRules("English", max_hashtags=1, emoji_use="rare")
TINA = "Hi! I'm Tina, the media and journalism professional who loves a good story and coffee."
TINA_AGAIN = "Hey! I'm Tina, the media and journalism professional who loves a good story and tea."


def _examples(*texts: str, greetings: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"tweets": [{"pillar": "work", "text": text} for text in texts],
            "greetings": list(greetings)}


def _validate(data: dict[str, Any]) -> ExampleTweets:
    return ExampleTweets.model_validate(data, context={POST_RULES_KEY: RULES})


def test_a_reworded_greeting_among_too_few_examples_is_re_asked_and_named() -> None:
    data = _examples(TINA, "Deadline day: three stories filed, one coffee spilled.", TINA_AGAIN)
    with pytest.raises(ValidationError) as caught:
        _validate(data)
    assert "tweets.2: too similar to tweets.0" in str(caught.value)


def test_with_enough_passing_examples_the_failing_texts_are_dropped() -> None:
    data = _examples(TINA, "Deadline day: three stories filed, one coffee spilled.", TINA_AGAIN,
                     "The archive smelled of dust and old ink today.",
                     greetings=("Welcome aboard! Pull up a chair.", TINA))
    kept = _validate(data)
    assert [tweet.text for tweet in kept.tweets] == [data["tweets"][n]["text"] for n in (0, 1, 3)]
    assert kept.greetings == ["Welcome aboard! Pull up a chair."]


def test_the_strategy_habits_hold_for_posts_and_greetings() -> None:
    data = _examples("Sunrise over the hangar, coffee in hand.",
                     "Filed the #news story for #media.",
                     "The archive smelled of dust and old ink today.",
                     greetings=("Welcome aboard! 🚀🚀🚀",))
    with pytest.raises(ValidationError) as caught:
        _validate(data)
    message = str(caught.value)
    assert "tweets.1: 2 hashtags, the strategy allows 1" in message
    assert "greetings.0: 3 emoji" in message


def test_examples_about_the_persona_or_opening_like_another_are_dropped() -> None:
    data = _examples("Tina is filing her third story of the day, coffee in hand.",
                     "Deadline day: three stories filed, one coffee spilled.",
                     "Deadline day: three interviews, no quote, and a printer that jammed.",
                     "The archive smelled of dust and old ink today.",
                     "Interviewed a ferry captain who has never missed a sailing.",
                     greetings=(TINA,))
    named = PostRules("English", max_hashtags=1, emoji_use="rare", persona_name="Tina")
    kept = ExampleTweets.model_validate(data, context={POST_RULES_KEY: named})
    assert [tweet.text for tweet in kept.tweets] == [data["tweets"][n]["text"] for n in (1, 3, 4)]
    assert kept.greetings == [TINA]  # "I'm Tina" introduces herself


def test_a_card_read_back_is_not_judged_again() -> None:
    assert len(ExampleTweets.model_validate(_examples(TINA, TINA, TINA)).tweets) == 3


def test_set_problems_reports_earlier_posts_without_changing_them() -> None:
    problems = set_problems(["one fine day at the airfield", "one fine day at the airfield!"],
                            RULES, labels=["a", "b"])
    assert problems == {1: ["too similar to a: 'one fine day at the airfield'"]}


def test_failing_examples_are_re_asked_with_their_reasons(start_server: Any,
                                                          make_image: Any, tmp_path: Path) -> None:
    bad = _examples(TINA, "Filed three stories before lunch today.", TINA_AGAIN)

    def responder(body: dict[str, Any]) -> Reply:
        reasked = "too similar" in json.dumps(body["messages"])
        if schema_name(body) == "example_tweets" and not reasked:
            return Reply(json.dumps(bad))
        return valid_reply(body)

    server = start_server(responder)
    options = PersonaRunOptions(images=[make_image("ava.png")], out_dir=tmp_path / "out")
    summary = asyncio.run(generate_personas(options, server_settings(server)))
    assert summary.outcomes[0].card_path is not None
    asks = [r for r in server.requests if r.schema_name == "example_tweets"]
    assert len(asks) == 2
    assert "tweets.2: too similar to tweets.0" in asks[1].text
    card = json.loads(summary.outcomes[0].card_path.read_text(encoding="utf-8"))
    assert EXAMPLES["tweets"][0]["text"] in card["data"]["mes_example"]


def test_stage_3_greetings_become_the_cards_first_and_alternate_greetings(
        start_server: Any, make_image: Any, tmp_path: Path) -> None:
    greetings = ("Welcome! Mind the recycled coffee.", "Hello there, fellow glider fan.")

    def responder(body: dict[str, Any]) -> Reply:
        if schema_name(body) == "example_tweets":
            return Reply(json.dumps({**EXAMPLES, "greetings": list(greetings)}))
        return valid_reply(body)

    server = start_server(responder)
    options = PersonaRunOptions(images=[make_image("ava.png")], out_dir=tmp_path / "out")
    summary = asyncio.run(generate_personas(options, server_settings(server)))
    path = summary.outcomes[0].card_path
    assert path is not None
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    assert (data["first_mes"], data["alternate_greetings"]) == (greetings[0], [greetings[1]])


def test_a_post_written_to_the_cap_is_cut_to_x_length_not_failed() -> None:
    # The default offline model, make run: 280 characters (the schema's cap, hit mid-hashtag)
    # that weigh 281 on X ("ả" weighs 2), sent three times alike to the re-asks.
    capped = ("Back from Hội An with a camera full of lanterns and a notebook full of recipes. "
              "I can't wait to share some more memories with you soon. #HoàngBảoLinh #")
    capped = capped.rjust(280, "x")
    data = _examples(capped, "Deadline day: three stories filed, one coffee spilled.",
                     "The archive smelled of dust and old ink today.")
    kept = _validate(data)
    assert [tweet.text for tweet in kept.tweets][1:] == [
        "Deadline day: three stories filed, one coffee spilled.",
        "The archive smelled of dust and old ink today."]
    assert kept.tweets[0].text == capped[:-len(" #")]
    assert weighted_length(kept.tweets[0].text) <= 280 < weighted_length(capped)


def test_trailing_hashtags_past_the_strategy_are_dropped_not_failed() -> None:
    # The default offline model, make run: five tags where the strategy allows three (RULES: 1).
    overshoot = "Golden hour on the ridge today. #photography #outdoors #travel"
    inside = "My #photography and #outdoors life, in one post."
    data = _examples(overshoot, "Deadline day: three stories filed, one coffee spilled.",
                     "The archive smelled of dust and old ink today.", inside)
    kept = _validate(data)
    assert kept.tweets[0].text == "Golden hour on the ridge today. #photography"
    assert inside not in [tweet.text for tweet in kept.tweets]  # tags in a sentence: dropped


def test_cutting_to_x_length_keeps_the_last_whole_word_as_written() -> None:
    text = ("ả" * 139 + " C#").ljust(280, " ")  # weighs 278 + 3: over; "C#" is a word
    assert fit_weighted(text) == "ả" * 139
    assert fit_weighted("short C# post") == "short C# post"
    assert fit_weighted(("word " * 60).strip() + " ả") == ("word " * 56).strip()
