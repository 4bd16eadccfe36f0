"""accounts.yaml: round trip under its lock, secrets only named, credentials resolved late."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from persona_foundry.errors import CredentialError, InputError
from persona_foundry.publish.credentials import resolve_secrets
from persona_foundry.store import Account, SecretRef, read_accounts, update_accounts


def _account(**secrets: SecretRef) -> Account:
    return Account(persona="ava", platform="mastodon", api_base="https://mastodon.test",
                   secrets=secrets or {"access_token": SecretRef(env="AVA_TOKEN")})


def test_accounts_round_trip_and_a_second_account_replaces_the_first(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    assert read_accounts(path).accounts == []  # no file yet: no accounts

    assert update_accounts(path, lambda accounts: accounts.put(_account())) is None
    replaced = update_accounts(path, lambda accounts: accounts.put(
        _account(access_token=SecretRef(env="AVA_OTHER"))))

    assert replaced is not None and replaced.secrets["access_token"].env == "AVA_TOKEN"
    accounts = read_accounts(path)
    account = accounts.for_persona("ava")
    assert len(accounts.accounts) == 1 and account is not None
    assert account.secrets["access_token"].env == "AVA_OTHER"
    assert "AVA_OTHER" in path.read_text()


@pytest.mark.parametrize("text", [
    "accounts:\n- {persona: ava, platform: mastodon, api_base: x, token: abc123}\n",
    "accounts:\n- {persona: ava, platform: x, api_base: x, consumer_secret: abc}\n",
    "accounts:\n- {persona: ava, platform: bluesky, api_base: x, password: hunter2}\n",
])
def test_a_secret_written_in_the_clear_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match="never the secret itself"):
        read_accounts(path)


def test_a_secret_reference_is_an_env_var_or_a_keyring_entry_exactly() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SecretRef(env="A", keyring_service="svc")
    with pytest.raises(ValueError, match="exactly one"):
        SecretRef()
    with pytest.raises(ValueError, match="pattern"):
        SecretRef(env="not a name; rm -rf")


class _MemoryKeyring(KeyringBackend):
    """An in-memory keyring: what a desktop keyring would answer."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


def test_secrets_come_from_the_environment_or_the_keyring(
        monkeypatch: pytest.MonkeyPatch) -> None:
    backend = _MemoryKeyring()
    backend.set_password("persona-foundry", "ava-x", "from-the-keyring")
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    monkeypatch.setenv("AVA_TOKEN", "from-the-env")
    try:
        account = _account(access_token=SecretRef(env="AVA_TOKEN"),
                           other=SecretRef(keyring_service="persona-foundry",
                                           keyring_user="ava-x"))
        assert resolve_secrets(account, ("access_token", "other")) == {
            "access_token": "from-the-env", "other": "from-the-keyring"}
        monkeypatch.delenv("AVA_TOKEN")
        with pytest.raises(CredentialError, match="environment variable AVA_TOKEN"):
            resolve_secrets(account, ("access_token",))
        with pytest.raises(CredentialError, match="names no source for missing"):
            resolve_secrets(account, ("missing",))
    finally:
        keyring.set_keyring(previous)
