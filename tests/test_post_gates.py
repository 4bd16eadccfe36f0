"""Posts on small models: a reply's own duplicates, the judge gate, penalties, voice samples."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openai_server import FakeOpenAIServer, Reply
from persona_foundry.quality.judge import JUDGE_STAGE
from stage_replies import content_reply, distinct_post, requested_slots, schema_name
from test_quality import judge_replies
from test_tweets import make_cards, run_tweets

StartServer = Callable[..., FakeOpenAIServer]
REPEATED = "It's time for a walk in the park to enjoy the beautiful sunset with friends."
OFF_VOICE = "As an AI language model, I cannot have opinions about sourdough."


def _posts(body: dict[str, Any], text_for: Callable[[str, int], str]) -> Reply:
    slots = requested_slots(body)
    return Reply(json.dumps({"tweets": [
        {"slot_id": slot, "text": text_for(slot, number),
         "image_prompt": "photo of Ava at the airfield"} for number, slot in enumerate(slots)]}))


def test_copies_inside_one_reply_are_redone_at_once_naming_what_they_copied(
        start_server: StartServer, make_image: Any, tmp_path: Path) -> None:
    def responder(body: dict[str, Any]) -> Reply:
        if schema_name(body) != "tweets":
            return content_reply(body)
        first = "Draft 1 was rejected" not in json.dumps(body["messages"])
        return _posts(body, lambda slot, _: REPEATED if first else distinct_post(slot))

    server = start_server(responder)
    out = tmp_path / "out"
    summary = run_tweets(server, make_cards(server, make_image, out, "ava"), out, count=4,
                         slots_per_call=4, settings={"max_concurrent": 1})
    result = summary.personas[0]
    assert (result.made, result.regenerated, result.failed) == (4, 3, 0)
    calls = [r for r in server.requests if r.schema_name == "tweets"]
    assert len(calls) == 2  # the three copies went together in the very next call
    first_slot = requested_slots(calls[0].body)[0]
    assert f"too similar to the post for slot {first_slot}" in calls[1].text


def test_the_judge_gate_redoes_a_post_in_the_wrong_voice_with_its_reason(
        start_server: StartServer, make_image: Any, tmp_path: Path) -> None:
    judge = judge_replies({"AI language model"})

    def responder(body: dict[str, Any]) -> Reply:
        if schema_name(body) == JUDGE_STAGE:
            return judge(body)
        if schema_name(body) != "tweets":
            return content_reply(body)
        retried = "consistency judge" in json.dumps(body["messages"])
        return _posts(body, lambda slot, number: OFF_VOICE if number == 0 and not retried
                      else distinct_post(slot + str(retried)))

    server = start_server(responder)
    out = tmp_path / "out"
    summary = run_tweets(server, make_cards(server, make_image, out, "ava"), out, count=3,
                         slots_per_call=3, judge=True, settings={"max_concurrent": 1})
    result = summary.personas[0]
    assert (result.made, result.judge_rejected, result.failed) == (3, 1, 0)
    retry = [r for r in server.requests if r.schema_name == "tweets"][-1]
    assert "the consistency judge: written in Spanish, not English" in retry.text
    judged = [r for r in server.requests if r.schema_name == JUDGE_STAGE]
    assert judged and all(r.body["temperature"] == 0.0 for r in judged)
    saved = json.loads(result.tweet_file.read_text(encoding="utf-8"))["tweets"]  # type: ignore[union-attr]
    assert not any(OFF_VOICE in tweet["text"] for tweet in saved)


def test_posts_calls_carry_the_penalties_the_endpoint_accepts_and_voice_samples(
        start_server: StartServer, make_image: Any, tmp_path: Path) -> None:
    server = start_server(content_reply)
    out = tmp_path / "out"
    run_tweets(server, make_cards(server, make_image, out, "ava"), out, count=2)
    post_call = next(r for r in server.requests if r.schema_name == "tweets")
    core_call = next(r for r in server.requests if r.schema_name == "core")
    assert (post_call.body["presence_penalty"], post_call.body["frequency_penalty"]) == (0.3, 0.2)
    assert "dry_multiplier" not in post_call.body  # llama.cpp's own: the embedded server only
    assert "presence_penalty" not in core_call.body
    prompt = post_call.body["messages"][-1]["content"]
    assert "fragments of earlier posts" in prompt and "at most 1 hashtag(s)" in prompt
    assert "My starter is older" not in prompt  # an example's opening is never shown
    assert "… older than some of …" in prompt
    assert "- id " in prompt and "Angle: " in prompt and 'start with "' in prompt
    assert "in the first person" in post_call.body["messages"][0]["content"]


def test_posts_about_the_persona_or_opening_like_another_are_redone_with_the_reason(
        start_server: StartServer, make_image: Any, tmp_path: Path) -> None:
    served: dict[str, int] = {}

    def responder(body: dict[str, Any]) -> Reply:
        if schema_name(body) != "tweets":
            return content_reply(body)
        name = body["messages"][0]["content"].removeprefix("You are ").split(" (@")[0]
        first_drafts = [f"{name} is heading to the airfield today, she says the sky is clear.",
                        "Just got back from the airfield, my legs are tired but happy.",
                        "Just got back from a bakery run with a warm rye loaf."]

        def text_for(slot: str, number: int) -> str:
            served[slot] = served.get(slot, 0) + 1
            if served[slot] > 1:
                return distinct_post(slot + "again")
            return first_drafts[number] if len(served) <= 3 else (
                "Just got back from the lake, the water was freezing.")  # the month's 4th slot

        return _posts(body, text_for)

    server = start_server(responder)
    out = tmp_path / "out"
    summary = run_tweets(server, make_cards(server, make_image, out, "ava"), out, count=4,
                         slots_per_call=3, settings={"max_concurrent": 1})
    result = summary.personas[0]
    assert (result.made, result.regenerated, result.failed) == (4, 3, 0)
    calls = [r for r in server.requests if r.schema_name == "tweets"]
    slots = requested_slots(calls[0].body)
    retries = " ".join(r.text for r in calls if "Draft 1 was rejected" in r.text)
    assert "in the third person at its start" in retries
    # Inside one reply, and against a post accepted from an earlier reply: both named.
    assert retries.count(f"opens like the post for slot {slots[1]} ('just got back…')") == 2
    saved = json.loads(result.tweet_file.read_text(encoding="utf-8"))["tweets"]  # type: ignore[union-attr]
    assert sum(tweet["text"].startswith("Just got back") for tweet in saved) == 1
    # Each slot of a call its own opening words; a retry gets other ones.
    first_lines = _slot_lines(calls[0])
    assert len({line.split("start with")[1] for line in first_lines.values()}) == 3
    retried = next(_slot_lines(r)[slots[0]] for r in calls[1:] if slots[0] in _slot_lines(r))
    assert retried.split("start with")[1][:12] != first_lines[slots[0]].split("start with")[1][:12]


def _slot_lines(request: Any) -> dict[str, str]:
    prompt = request.body["messages"][-1]["content"]
    return {line.split()[2]: line for line in prompt.splitlines() if line.startswith("- id ")}
