"""The platforms the publisher knows, by the name accounts.yaml gives them.

Adding one: a module beside this with a class that satisfies `base.Platform` and a `SPEC`
declaring its limits and secrets, then one line here (publish/README.md).
"""

from __future__ import annotations

from . import bluesky, mastodon, postiz, x
from .base import PlatformSpec

PLATFORMS: dict[str, PlatformSpec] = {
    spec.name: spec for spec in (mastodon.SPEC, bluesky.SPEC, x.SPEC, postiz.SPEC)
}
