"""The store: the one owner of the output folder's layout and of every file format in it.

Every command reads and writes cards, calendars, tweet files and images through this package:
typed load/save, one error policy (InputError naming the file), one locked read-modify-write
(`locking.locked_update`) with a version check, and the slot lifecycle as data (`slots.MOVES`).
"""

from .accounts_file import Account, AccountsFile, SecretRef, read_accounts, update_accounts
from .calendar_file import (
    Calendar,
    CalendarEvent,
    PublishRecord,
    Slot,
    create_calendar,
    read_calendar,
    read_calendar_versioned,
    update_calendar,
    zone_named,
)
from .card_file import (
    PF_EXTENSION,
    PersonaExtension,
    StageSummary,
    card_extension,
    extension_of,
    extensions_with,
    read_card_json,
    read_card_json_versioned,
    update_card_json,
)
from .layout import OutputLayout
from .locking import StaleVersionError, locked_update, version_of
from .slots import MOVES, SLOT_STATUSES, SlotMove, SlotMoveError, SlotStatus, next_status
from .tweet_file import (
    TweetFile,
    TweetRecord,
    claim_tweet_file,
    read_tweet_file,
    read_tweet_file_versioned,
    read_tweet_files,
    save_tweet_file,
    update_tweet_file,
)

__all__ = [
    "MOVES",
    "PF_EXTENSION",
    "SLOT_STATUSES",
    "Account",
    "AccountsFile",
    "Calendar",
    "CalendarEvent",
    "OutputLayout",
    "PersonaExtension",
    "PublishRecord",
    "SecretRef",
    "Slot",
    "SlotMove",
    "SlotMoveError",
    "SlotStatus",
    "StageSummary",
    "StaleVersionError",
    "TweetFile",
    "TweetRecord",
    "card_extension",
    "claim_tweet_file",
    "create_calendar",
    "extension_of",
    "extensions_with",
    "locked_update",
    "next_status",
    "read_accounts",
    "read_calendar",
    "read_calendar_versioned",
    "read_card_json",
    "read_card_json_versioned",
    "read_tweet_file",
    "read_tweet_file_versioned",
    "read_tweet_files",
    "save_tweet_file",
    "update_accounts",
    "update_calendar",
    "update_card_json",
    "update_tweet_file",
    "version_of",
    "zone_named",
]
