"""`persona-foundry accounts add` and `publish`: parse the flags, run the publisher, print."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import ConfigurationError, PersonaFoundryError
from ..files import persona_key
from ..ledger import open_ledger
from ..store import Account, OutputLayout, SecretRef, update_accounts
from .publisher import Publisher, PublishSummary, publisher_lock
from .registry import PLATFORMS
from .watch import watch

console = Console(stderr=True)
EXIT_USAGE = 2
accounts_app = typer.Typer(help="Which platform account each persona publishes to.",
                           no_args_is_help=True)


def _fail(exc: PersonaFoundryError) -> typer.Exit:
    console.print(f"[red bold]error:[/] {escape(str(exc))}")
    return typer.Exit(EXIT_USAGE)


def _secret_ref(text: str) -> tuple[str, SecretRef]:
    """`name=env:VAR` or `name=keyring:SERVICE[/USER]` → (name, where it lives)."""
    name, _, where = text.partition("=")
    kind, _, value = where.partition(":")
    if kind == "env" and name and value:
        return name, SecretRef(env=value)
    if kind == "keyring" and name and value:
        service, _, user = value.partition("/")
        return name, SecretRef(keyring_service=service, keyring_user=user or None)
    raise ConfigurationError(f"--secret wants name=env:VAR or name=keyring:SERVICE[/USER], "
                             f"got {text!r}")


def _secrets(platform: str, token_env: str | None, token_keyring: str | None,
             given: list[str]) -> dict[str, SecretRef]:
    spec = PLATFORMS[platform]
    secrets = dict(_secret_ref(text) for text in given)
    primary = spec.secret_names[0]
    if token_env:
        secrets[primary] = SecretRef(env=token_env)
    elif token_keyring:
        service, _, user = token_keyring.partition("/")
        secrets[primary] = SecretRef(keyring_service=service, keyring_user=user or None)
    missing = [name for name in spec.secret_names if name not in secrets]
    unknown = [name for name in secrets if name not in spec.secret_names]
    if missing or unknown:
        raise ConfigurationError(
            f"{platform} needs {', '.join(spec.secret_names)} "
            f"(--token-env names {primary}; --secret name=env:VAR for the others); "
            f"missing: {', '.join(missing) or '-'}, unknown: {', '.join(unknown) or '-'}")
    return secrets


@accounts_app.command("add")
def add_account(
    card: Annotated[Path, typer.Argument(
        help="The persona's card (out/personas/x_persona.json).", exists=True, dir_okay=False)],
    platform: Annotated[str, typer.Option(help=f"One of: {', '.join(PLATFORMS)}.")],
    api_base: Annotated[str, typer.Option(help="The platform's base URL.")],
    handle: Annotated[str, typer.Option(help="Login / handle (Bluesky logs in with it).")] = "",
    channel: Annotated[str, typer.Option(help="Postiz: the integration id or name.")] = "",
    language: Annotated[str, typer.Option(help="Language tag of the posts.")] = "en",
    token_env: Annotated[str | None, typer.Option(
        help="Environment variable holding the platform's token / password / API key.")] = None,
    token_keyring: Annotated[str | None, typer.Option(
        help="Keyring SERVICE[/USER] holding it instead.")] = None,
    secret: Annotated[list[str] | None, typer.Option(
        help="Another secret: name=env:VAR or name=keyring:SERVICE[/USER] (X has four).")] = None,
    native_schedule: Annotated[bool | None, typer.Option(
        help="Hand future posts to the platform's own scheduler.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output folder (default: the card's).")] = None,
) -> None:
    """Link a persona to a platform account in out/accounts.yaml (secrets are only named)."""
    if platform not in PLATFORMS:
        console.print(f"[red bold]error:[/] unknown platform {platform!r}; "
                      f"known: {', '.join(PLATFORMS)}")
        raise typer.Exit(EXIT_USAGE)
    layout = OutputLayout(out) if out else OutputLayout.of_file(card)
    spec = PLATFORMS[platform]
    try:
        account = Account(
            persona=persona_key(card), platform=platform, api_base=api_base, handle=handle,
            channel=channel, language=language,
            native_schedule=spec.schedule_by_default if native_schedule is None
            else native_schedule,
            secrets=_secrets(platform, token_env, token_keyring, secret or []))
        replaced = update_accounts(layout.accounts_path, lambda accounts: accounts.put(account))
    except PersonaFoundryError as exc:
        raise _fail(exc) from exc
    except ValueError as exc:
        console.print(f"[red bold]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    verb = "replaced" if replaced else "added"
    console.print(f"{account.persona} → {escape(account.label)} {verb} in "
                  f"{escape(str(layout.accounts_path))}")


def print_publish_summary(summary: PublishSummary, *, dry_run: bool) -> None:
    """One line per slot handled, what comes next, the problems."""
    table = Table("persona", "slot", "status", "detail", title="would publish" if dry_run
                  else "published")
    for outcome in summary.outcomes:
        table.add_row(outcome.persona, outcome.slot_id, outcome.status,
                      escape(outcome.url or outcome.detail))
    if summary.outcomes:
        Console().print(table)
    if dry_run and summary.upcoming:
        later = Table("persona", "slot", "goes out at (persona's time)", title="later")
        for persona, slot_id, when in sorted(summary.upcoming, key=lambda row: row[2]):
            later.add_row(persona, slot_id, when.isoformat())
        Console().print(later)
    for problem in summary.problems:
        console.print(f"[yellow]{escape(problem)}")
    if summary.next_due is not None:
        console.print(f"next due: {summary.next_due.isoformat()}")


def publish(
    out: Annotated[Path, typer.Argument(help="Output folder (its calendars and accounts.yaml).")],
    dry_run: Annotated[bool, typer.Option(help="Show what would go out now and later.")] = False,
    now: Annotated[bool, typer.Option(help="Post every approved slot that is due.")] = False,
    through: Annotated[str | None, typer.Option(
        help="YYYY-MM-DD: treat slots up to that day (persona's zone) as due.")] = None,
    watch_: Annotated[bool, typer.Option(
        "--watch", help="Keep running: each approved slot at its time (stop: SIGTERM).")] = False,
) -> None:
    """Publish approved slots to each persona's account, each exactly once."""
    if sum((dry_run, now, watch_)) != 1:
        console.print("[red bold]error:[/] give one of --dry-run, --now, --watch")
        raise typer.Exit(EXIT_USAGE)
    try:
        until = date.fromisoformat(through) if through else None
    except ValueError as exc:
        console.print(f"[red bold]error:[/] --through must look like 2026-12-31, got {through!r}")
        raise typer.Exit(EXIT_USAGE) from exc
    layout = OutputLayout(out)
    ledger = open_ledger(layout.ledger_path)

    async def run() -> int:
        publisher = Publisher(layout, ledger, PLATFORMS, run_id=uuid.uuid4().hex[:12])
        if watch_:
            await watch(publisher, lambda summary: print_publish_summary(summary,
                                                                         dry_run=False))
            console.print("publisher stopped")
            return 0
        summary = await publisher.run_once(through=until, dry_run=dry_run)
        print_publish_summary(summary, dry_run=dry_run)
        return summary.exit_code

    try:
        with publisher_lock(layout):
            code = asyncio.run(run())
    except PersonaFoundryError as exc:
        raise _fail(exc) from exc
    finally:
        ledger.close()
    raise typer.Exit(code)
