"""Valid replies for every stage, and a responder that serves them by schema name."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from openai_server import Reply

CORE = {
    "name": "Ava Lindqvist",
    "handle": "ava_orbits",
    "age": 33,
    "gender": "female",
    "location": "Houston, USA",
    "timezone": "America/Chicago",
    "occupation": "aerospace engineer",
    "personality": ["curious", "dry-humoured", "methodical"],
    "backstory": "Grew up in Ohio, flew gliders at 16, now tests life-support systems.",
    "interests": ["spaceflight", "gliding", "sourdough"],
    "voice": "precise, warm, fond of understatement",
    "bio": "Life-support engineer. Glider pilot. Bread enthusiast.",
    "greeting": "Hey! Pull up a chair, the coffee is recycled but excellent.",
    "appearance": "short brown hair, bright smile, orange flight suit",
}
STRATEGY = {
    "pillars": [
        {"name": "engineering", "description": "behind the scenes at work", "share_percent": 50},
        {"name": "gliding", "description": "weekend flights", "share_percent": 30},
        {"name": "baking", "description": "sourdough experiments", "share_percent": 20},
    ],
    "posts_per_day": 2,
    "posting_times": ["08:15", "19:30"],
    "tone": "nerdy and upbeat",
    "max_hashtags_per_tweet": 1,
    "favorite_hashtags": ["#space", "#gliding"],
    "emoji_use": "rare",
    "topics_to_avoid": ["politics"],
}
EXAMPLES = {
    "tweets": [
        {"pillar": "engineering", "text": "Today's CO2 scrubber test: boring. Boring is good."},
        {"pillar": "gliding", "text": "Thermals were generous today. 2 hours, zero engine."},
        {"pillar": "baking", "text": "My starter is older than some of my interns."},
    ]
}
SOCIAL = {
    "relationships": [
        {
            "name": "Maya Chen",
            "handle": "mayabuilds",
            "relation": "best friend",
            "description": "college roommate, now a rocket propulsion lead",
            "since": "2011",
        },
        {
            "name": "Tom Lindqvist",
            "handle": "",
            "relation": "family",
            "description": "younger brother, farmer in Ohio",
            "since": "birth",
        },
    ],
    "communities": ["Houston Soaring Club"],
    "follows": ["@NASA", "space historians"],
}
AUTHENTICITY = {
    "quirks": ["names every sourdough starter"],
    "flaws": ["overplans weekends"],
    "routines": ["6am run along the bayou"],
    "running_jokes": ["recycled coffee"],
    "opinions": ["metric units should be mandatory"],
    "writing_habits": ["lowercase when tired"],
}
VISUAL = {
    "appearance": "woman in her thirties, short brown hair, warm smile",
    "signature_style": "orange flight suit, mission patches",
    "consistent_details": ["small silver stud earrings"],
    "photo_style": "natural light, eye-level, candid",
    "prompt_base": "photo of a woman in her thirties, short brown hair, orange flight suit",
    "negative_prompt": "cartoon, deformed hands, text",
}
LOREBOOK = {
    "entries": [
        {"keys": [f"key{n}"], "comment": f"entry {n}", "content": f"Lore fact number {n}."}
        for n in range(1, 7)
    ]
}
STAGE_REPLIES: dict[str, dict[str, Any]] = {
    "core": CORE,
    "strategy": STRATEGY,
    "example_tweets": EXAMPLES,
    "social": SOCIAL,
    "authenticity": AUTHENTICITY,
    "visual": VISUAL,
    "lorebook": LOREBOOK,
}
_IMAGE_NAME = re.compile(r"file name: ([^\\\n]+)")


def schema_name(body: dict[str, Any]) -> str:
    """The stage a request is for."""
    return str(body["response_format"]["json_schema"]["name"])


def valid_reply(body: dict[str, Any]) -> Reply:
    """The stage's valid reply; the core name carries the image name, so batches differ."""
    stage = schema_name(body)
    payload = dict(STAGE_REPLIES[stage])
    if stage == "core":
        match = _IMAGE_NAME.search(json.dumps(body["messages"], ensure_ascii=False))
        if match:
            image = match.group(1)
            payload["name"] = f"Ava from {image}"[:60]
            if image != "ava.png":  # every other image gets its own handle
                payload["handle"] = "ava_" + hashlib.sha256(image.encode()).hexdigest()[:8]
        retries = json.dumps(body["messages"]).count("already taken")
        if retries:  # a model that listens: told a name is taken, it picks another
            payload["name"] = f"{payload['name']} {retries + 1}"
            payload["handle"] = f"{payload['handle'][:12]}_{retries + 1}"
    return Reply(json.dumps(payload, ensure_ascii=False))


WORDS = [
    "sunrise",
    "thermal",
    "glider",
    "hangar",
    "runway",
    "sourdough",
    "starter",
    "crumb",
    "oven",
    "valley",
    "ridge",
    "cloud",
    "coffee",
    "notebook",
    "sensor",
    "valve",
    "pressure",
    "oxygen",
    "filter",
    "launch",
    "orbit",
    "capsule",
    "helmet",
    "glove",
    "bakery",
    "market",
    "street",
    "bridge",
    "river",
    "harbor",
    "ferry",
    "bicycle",
    "tram",
    "museum",
    "library",
    "garden",
    "lemon",
    "basil",
    "pepper",
    "ginger",
    "honey",
    "walnut",
    "cherry",
    "apricot",
    "maple",
    "cedar",
    "pine",
    "birch",
    "willow",
    "violin",
    "drum",
    "guitar",
    "piano",
    "chorus",
    "rhythm",
    "melody",
    "podcast",
    "episode",
    "chapter",
    "sketch",
    "canvas",
    "marathon",
    "stretch",
    "yoga",
    "climbing",
    "rope",
    "harness",
    "summit",
    "trail",
    "cabin",
    "lantern",
    "compass",
    "map",
]
CALENDAR_REPLY = {
    "themes": ["launch prep", "winter flying"],
    "events": [
        {
            "day": 5,
            "title": "Test flight",
            "description": "first glider flight of winter",
            "kind": "project",
            "with_handles": [],
        },
        {
            "day": 24,
            "title": "Christmas Eve",
            "description": "dinner with family",
            "kind": "holiday",
            "with_handles": [],
        },
    ],
}


def distinct_post(seed: str, words: int = 12) -> str:
    """A post whose words are drawn from a hash of seed: different seeds share few shingles."""
    digest = hashlib.sha256(seed.encode()).digest()
    picked = [WORDS[digest[i] % len(WORDS)] for i in range(words)]
    return " ".join(picked).capitalize() + "."


def requested_slots(body: dict[str, Any]) -> list[str]:
    """The slot ids a tweets request asks for (the `const` of each position of its schema)."""
    tweets = body["response_format"]["json_schema"]["schema"]["properties"]["tweets"]
    return [item["properties"]["slot_id"]["const"] for item in tweets["prefixItems"]]


def content_reply(body: dict[str, Any]) -> Reply:
    """Valid replies for persona stages, calendars and tweets (distinct posts per slot)."""
    stage = schema_name(body)
    if stage == "calendar":
        return Reply(json.dumps(CALENDAR_REPLY))
    if stage == "tweets":
        tweets = [
            {
                "slot_id": slot,
                "text": distinct_post(slot + json.dumps(body["messages"])),
                "image_prompt": "photo of Ava at the airfield at golden hour",
            }
            for slot in requested_slots(body)
        ]
        return Reply(json.dumps({"tweets": tweets}))
    return valid_reply(body)
