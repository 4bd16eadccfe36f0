"""Character cards: merging stage outputs into a card, and the card formats."""

from .merge import PF_EXTENSION, merge_card, previous_outputs
from .v2 import CharacterCardV2

__all__ = ["PF_EXTENSION", "CharacterCardV2", "merge_card", "previous_outputs"]
