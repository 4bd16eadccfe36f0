"""Stage 3, example tweets: posts and greetings in the persona's voice across their pillars.

Everything written here is read as the persona's own posts (the card's `mes_example`, first
message and alternate greetings come from it, and `tweets` shows the posts as the voice to
match), so it passes the checks every calendar post passes (textchecks.py): weighted length,
language, the strategy's hashtag and emoji habits, the persona's own voice (never named in the
third person at the start), and no exact or near duplicate nor shared opening among them.
A set with too few passing posts is re-asked with the reasons, like a failing post; otherwise
the failing texts are dropped (a small model re-asked tends to send the same reply again).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from ..textchecks import PostRules, fit_weighted, set_problems, within_hashtags
from . import core, strategy
from .base import (
    Message,
    Stage,
    StageContext,
    stage_messages,
)

NAME = "example_tweets"
MIN_EXAMPLES = 3
MAX_GREETINGS = 3
POST_RULES_KEY = "post_rules"
Greeting = Annotated[str, Field(min_length=1, max_length=280)]


class ExampleTweet(BaseModel):
    """One example post."""

    pillar: str = Field(max_length=40, description="the content pillar it belongs to")
    text: str = Field(min_length=1, max_length=280, description="the post, at most 280 characters")


def _every_key_required(schema: dict[str, Any]) -> None:
    # `greetings` has a default only so cards written before it existed still load; a reply
    # must hold it all the same.
    schema["required"] = list(schema.get("properties", {}))


class ExampleTweets(BaseModel):
    """Posts and greetings that show the persona's voice."""

    model_config = ConfigDict(json_schema_extra=_every_key_required)

    tweets: list[ExampleTweet] = Field(
        min_length=MIN_EXAMPLES, max_length=8,
        description="6 to 8 posts, each on its own subject, each opening differently",
    )
    greetings: list[Greeting] = Field(
        default_factory=list, max_length=MAX_GREETINGS,
        description="1 to 3 first messages to a new follower, unlike each other and the posts",
        json_schema_extra={"minItems": 1},
    )

    @model_validator(mode="after")
    def _passes_post_checks(self, info: ValidationInfo) -> ExampleTweets:
        # Only a generation run states the rules; a card read back is taken as it was saved.
        rules = (info.context or {}).get(POST_RULES_KEY)
        if not isinstance(rules, PostRules):
            return self
        # What a small model overshoots at the end of a post (written to the schema's cap; a
        # run of tags past the strategy's count) is cut, not redone: re-asked, it sends the same.
        for tweet in self.tweets:
            tweet.text = _trimmed(tweet.text, rules)
        self.greetings = [_trimmed(greeting, rules) for greeting in self.greetings]
        labels = [f"tweets.{n}" for n in range(len(self.tweets))]
        labels += [f"greetings.{n}" for n in range(len(self.greetings))]
        texts = [tweet.text for tweet in self.tweets] + self.greetings
        problems = set_problems(texts, rules, labels=labels, openings=True)
        kept = [tweet for n, tweet in enumerate(self.tweets) if n not in problems]
        if len(kept) < MIN_EXAMPLES:
            # Shared openings are the softest rule: a small model that opens every post alike
            # ("Hey there! I…") failed the whole persona on it (make run, default model).
            problems = set_problems(texts, rules, labels=labels, openings=False)
            kept = [tweet for n, tweet in enumerate(self.tweets) if n not in problems]
        if len(kept) < MIN_EXAMPLES:
            raise ValueError("rewrite these, keep the others:\n" + "\n".join(
                f"- {labels[n]}: {'; '.join(found)}" for n, found in sorted(problems.items())))
        # Enough passed: the failing ones are dropped rather than re-asked. The default offline
        # model, re-asked, sent its very reply again (469 tokens, 9.7 minutes on 2 cores).
        first_greeting = len(self.tweets)
        self.greetings = [greeting for n, greeting in enumerate(self.greetings, first_greeting)
                          if n not in problems]
        self.tweets = kept
        return self


def _trimmed(text: str, rules: PostRules) -> str:
    return within_hashtags(fit_weighted(text), rules.max_hashtags)


def post_rules(ctx: StageContext) -> dict[str, Any]:
    """The strategy's habits as the rules the examples must keep (none without a strategy)."""
    plan = ctx.outputs.get(strategy.NAME)
    if not isinstance(plan, strategy.TweetStrategy):
        return {}
    identity = ctx.outputs.get(core.NAME)
    name = identity.name if isinstance(identity, core.CorePersona) else ""
    return {POST_RULES_KEY: PostRules(ctx.persona.language, plan.max_hashtags_per_tweet,
                                      plan.emoji_use, name)}


def build_messages(ctx: StageContext) -> list[Message]:
    """Ask for example posts that follow the strategy, its habits spelled out."""
    rules = post_rules(ctx).get(POST_RULES_KEY)
    habits = (f"At most {rules.max_hashtags} hashtag(s) and emoji use '{rules.emoji_use}' in "
              "every post and greeting." if rules else "")
    return stage_messages(
        ctx, role="You ghost-write posts for one persona, in their exact voice.",
        task=("Write example X/Twitter posts across the persona's content pillars, and their "
              "greetings to new followers. Every text says something different and starts "
              f"differently: no shared openings or hashtag tails. {habits}"),
        stage=STAGE,
    )


STAGE = Stage(
    name=NAME, depends_on=(core.NAME, strategy.NAME), output_model=ExampleTweets,
    build_messages=build_messages, estimated_s=25, checks_context=post_rules,
)
