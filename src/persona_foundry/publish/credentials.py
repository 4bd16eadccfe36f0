"""Secrets named in accounts.yaml, resolved at the moment an account is opened.

Values come from the environment (through settings.py, the only reader of it) or a keyring; they
live in memory only, are handed to the platform client and are never written, logged or
recorded. An error names where the secret should be, never a value.
"""

from __future__ import annotations

import keyring
from keyring.errors import KeyringError

from ..errors import CredentialError
from ..settings import secret_from_env
from ..store import Account, SecretRef


def resolve_secret(name: str, ref: SecretRef, account: Account) -> str:
    """The secret `ref` points to, or a CredentialError saying where it was looked for."""
    if ref.env is not None:
        value = secret_from_env(ref.env)
    else:
        try:
            value = keyring.get_password(str(ref.keyring_service),
                                         ref.keyring_user or account.handle or account.persona)
        except KeyringError as exc:
            raise CredentialError(f"{account.label}: the keyring could not be read for {name} "
                                  f"({type(exc).__name__})") from exc
    if not value:
        raise CredentialError(f"{account.label}: {name} is not set; put it in "
                              f"{ref.describe()}")
    return value


def resolve_secrets(account: Account, names: tuple[str, ...]) -> dict[str, str]:
    """Every secret the platform needs, by name; a CredentialError for the first one missing."""
    missing = [name for name in names if name not in account.secrets]
    if missing:
        raise CredentialError(f"{account.label}: accounts.yaml names no source for "
                              f"{', '.join(missing)} (secrets: {{name: {{env: VAR}}}})")
    return {name: resolve_secret(name, account.secrets[name], account) for name in names}
