"""`accounts.yaml`: which platform account each persona publishes to, and where its secrets live.

The file names secrets, it never holds one: each secret is a reference to an environment
variable or a keyring entry, resolved only when a post is sent (publish/credentials.py). A key
that looks like a secret written in the clear (`token: …`, `password: …`) is refused on read,
so a hand edit cannot slip one into a file that people commit and share.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import InputError
from .locking import locked_update

T = TypeVar("T")
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Keys that would hold a secret itself rather than the name of where it lives.
_CLEAR_SECRET_KEY = re.compile(r"(token|secret|password|passwd|api_?key|bearer)$", re.IGNORECASE)


class SecretRef(BaseModel):
    """Where one secret lives: an environment variable or a keyring entry (service, user)."""

    model_config = ConfigDict(extra="forbid")

    env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN, max_length=200)
    keyring_service: str | None = Field(default=None, max_length=200)
    keyring_user: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _exactly_one_source(self) -> SecretRef:
        if (self.env is None) == (self.keyring_service is None):
            raise ValueError("a secret is either `env: NAME` or `keyring_service:` "
                             "(+ `keyring_user:`), exactly one")
        return self

    def describe(self) -> str:
        """Where to put the secret, for an error message (never the secret)."""
        if self.env is not None:
            return f"environment variable {self.env}"
        return f"keyring entry {self.keyring_service}/{self.keyring_user or ''}"


class Account(BaseModel):
    """One persona's platform account."""

    model_config = ConfigDict(extra="allow")

    persona: str = Field(description="The persona key (`ava` for personas/ava_persona.json).")
    platform: str = Field(description="A platform of publish.PLATFORMS.")
    api_base: str = Field(description="The platform's base URL.")
    handle: str = Field(default="", description="Login or handle (Bluesky logs in with it).")
    channel: str = Field(default="", description="Postiz: the integration (channel) id.")
    language: str = Field(default="en", max_length=16)
    native_schedule: bool = Field(
        default=False, description="Hand future posts to the platform's own scheduler.")
    secrets: dict[str, SecretRef] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _no_secret_in_the_clear(cls, data: Any) -> Any:
        if isinstance(data, dict):
            clear = [key for key, value in data.items() if key != "secrets"
                     and isinstance(value, str) and _CLEAR_SECRET_KEY.search(key)]
            if clear:
                raise ValueError(f"{', '.join(clear)}: accounts.yaml names where a secret lives "
                                 "(secrets: {name: {env: VAR}}), never the secret itself")
        return data

    @property
    def label(self) -> str:
        """How the account is named in the calendar and the ledger (no secret in it)."""
        return f"{self.platform}:{self.handle or self.api_base}"


class AccountsFile(BaseModel):
    """Every persona's account."""

    model_config = ConfigDict(extra="allow")

    accounts: list[Account] = Field(default_factory=list)

    def for_persona(self, persona: str) -> Account | None:
        """The account this persona publishes to, if it has one."""
        return next((account for account in self.accounts if account.persona == persona), None)

    def put(self, account: Account) -> Account | None:
        """Add an account, replacing the persona's earlier one; return the replaced one."""
        earlier = self.for_persona(account.persona)
        self.accounts = [a for a in self.accounts if a.persona != account.persona] + [account]
        return earlier


def _parse(path: Path, raw: bytes) -> AccountsFile:
    if not raw.strip():
        return AccountsFile()
    try:
        data = yaml.safe_load(raw)
        return AccountsFile.model_validate(data or {})
    except (yaml.YAMLError, ValueError) as exc:
        raise InputError(path, f"unreadable accounts file: {exc}") from exc


def _dump(accounts: AccountsFile) -> bytes:
    payload = accounts.model_dump(mode="json", exclude_defaults=False, exclude_none=True)
    text = str(yaml.safe_dump(payload, sort_keys=False, allow_unicode=True))
    return ("# Persona → platform account. Secrets are named here (env / keyring), never "
            "stored.\n" + text).encode("utf-8")


def read_accounts(path: Path) -> AccountsFile:
    """The accounts file (empty when there is none yet), or an InputError naming the problem."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return AccountsFile()
    except OSError as exc:
        raise InputError(path, f"unreadable accounts file: {exc.strerror or exc}") from exc
    return _parse(path, raw)


def update_accounts(path: Path, change: Callable[[AccountsFile], T]) -> T:
    """Locked read-modify-write of the accounts file (created on first use)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return locked_update(path, _parse, _dump, change)[0]
