"""A slot as the post every attempt sends: its text, its image (with alt text), its key."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from ..errors import InputError
from ..store import Account, Calendar, OutputLayout, Slot, TweetRecord, read_tweet_file
from .base import OutgoingPost, PlatformSpec, PreparedImage
from .images import prepare_image

KEY_DIGEST_CHARS = 16


def idempotency_key(persona: str, slot: Slot) -> str:
    """The same key for every attempt of the same content; new content, a new key."""
    content = f"{slot.text}\0{slot.image_path or ''}".encode()
    return f"pf-{persona}-{slot.id}-{hashlib.sha256(content).hexdigest()[:KEY_DIGEST_CHARS]}"


class PostBuilder:
    """Builds posts from an output folder's slots, reading images only from inside it."""

    def __init__(self, layout: OutputLayout) -> None:
        self.layout = layout

    def build(self, calendar: Calendar, slot: Slot, account: Account, spec: PlatformSpec,
              schedule: datetime | None) -> OutgoingPost:
        """The post of a slot (InputError: its image is not there yet)."""
        persona = calendar.persona_key
        images: tuple[PreparedImage, ...] = ()
        if slot.format == "image" or slot.image_path:
            images = (prepare_image(self._image_file(persona, slot), self._alt_text(slot),
                                    max_bytes=spec.max_image_bytes,
                                    max_alt_chars=spec.max_alt_chars),)
        # An uncertain attempt keeps the key it was sent with.
        key = (slot.publish.idempotency_key if slot.publish and slot.status == "publishing"
               else idempotency_key(persona, slot))
        return OutgoingPost(persona=persona, slot_id=slot.id, text=slot.text or "",
                            scheduled_at=datetime.fromisoformat(slot.scheduled_at),
                            idempotency_key=key, language=account.language,
                            images=images, schedule_for=schedule)

    def build_text_only(self, calendar: Calendar, slot: Slot, account: Account) -> OutgoingPost:
        """The post without its image: enough to look it up on the platform."""
        key = slot.publish.idempotency_key if slot.publish else idempotency_key(
            calendar.persona_key, slot)
        return OutgoingPost(persona=calendar.persona_key, slot_id=slot.id, text=slot.text or "",
                            scheduled_at=datetime.fromisoformat(slot.scheduled_at),
                            idempotency_key=key, language=account.language)

    def _image_file(self, persona: str, slot: Slot) -> Path:
        """The slot's image, found inside this output folder only (never elsewhere on disk)."""
        if not slot.image_path:
            raise InputError(f"slot {slot.id}", "an image post whose image is not rendered yet")
        named = Path(slot.image_path)
        for candidate in (named, self.layout.images_for(persona) / named.name):
            if candidate.is_file() and self.layout.contains(candidate):
                return candidate
        raise InputError(named, "post image not found inside the output folder")

    def _alt_text(self, slot: Slot) -> str:
        """The image's description: the post record's alt text, else the prompt it came from."""
        record = self.tweet_record(slot)
        if record is not None:
            alt = str((record.model_extra or {}).get("alt_text") or record.image_prompt or "")
            if alt.strip():
                return alt.strip()
        return f"Image for a post about {slot.theme}"

    def tweet_path(self, slot: Slot) -> Path | None:
        """The tweet file the slot's post came from, inside this output folder."""
        if not slot.tweet_file:
            return None
        path = self.layout.tweets_dir / Path(slot.tweet_file).name
        return path if path.is_file() else None

    def tweet_record(self, slot: Slot) -> TweetRecord | None:
        """The slot's post record, if its tweet file is readable."""
        path = self.tweet_path(slot)
        if path is None:
            return None
        try:
            return next((r for r in read_tweet_file(path).tweets if r.slot_id == slot.id), None)
        except InputError:
            return None
