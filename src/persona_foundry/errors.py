"""Every error Persona Foundry raises on purpose, as one tree.

    PersonaFoundryError
    ├── ConfigurationError        settings or flags that cannot work together
    │   └── CredentialError       a platform secret named in accounts.yaml cannot be found
    ├── InputError                a bad input file (missing, not an image, truncated, too big, …)
    ├── IdentityError             a name the creator fixed (hint, spec, card) is already taken
    ├── OutputError               the output folder cannot be written
    ├── ModelSetupError           the embedded model cannot be found, assembled or loaded
    ├── SafetyError               a request the content rules refuse (minors and NSFW)
    └── LLMError                  a call to a language model failed
        ├── RunStoppedError       no further call of this run may start
        │   ├── EndpointError     wrong key, unreachable endpoint
        │   └── BudgetExceededError  the next call would pass --budget
        ├── TransportError        a call that failed after its retries (429 storm, 5xx, timeouts)
        └── StructuredOutputError the reply never validated against the stage's model
    └── PublishError              a platform did not take a post
        ├── PostRejectedError     it refused this post (4xx): the slot fails, the run goes on
        ├── RateLimitedError      429: wait until its reset, then send again
        ├── AccountRefusedError   401/403: the account's credentials were refused, nothing went out
        └── PlatformUnavailableError  5xx, timeouts, connection: retried with backoff

Each error carries the evidence a user needs to act on it: the input, the bad value, the number
of attempts, the last raw reply.
"""

from __future__ import annotations

from pathlib import Path


class PersonaFoundryError(Exception):
    """Base of every deliberate Persona Foundry error."""


class ConfigurationError(PersonaFoundryError):
    """Settings or flags that cannot work."""


class CredentialError(ConfigurationError):
    """A secret that accounts.yaml names (an env var, a keyring entry) is not there."""


class InputError(PersonaFoundryError):
    """An input file that cannot be used; names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class IdentityError(PersonaFoundryError):
    """A persona's name cannot be had; names the name, who fixed it and why."""

    def __init__(self, name: str, source: str, reason: str) -> None:
        self.name = name
        self.source = source
        super().__init__(f"name {name!r} (from the {source}) {reason}")


class OutputError(PersonaFoundryError):
    """The output folder (or a file in it) cannot be written."""


class ModelSetupError(PersonaFoundryError):
    """The embedded model cannot be found, assembled or loaded."""


class SafetyError(PersonaFoundryError):
    """A request refused by the content rules (e.g. NSFW content for an apparent minor)."""


class LLMError(PersonaFoundryError):
    """A language-model call failed."""


class RunStoppedError(LLMError):
    """Nothing more of this run may be called; what was done is kept, a rerun continues."""


class EndpointError(RunStoppedError):
    """The endpoint cannot serve this run at all (wrong key, unreachable); stops the run."""


class BudgetExceededError(RunStoppedError):
    """Starting the next call could take the run past its budget."""


class TransportError(LLMError):
    """A call that still failed after its retries."""

    def __init__(self, message: str, *, attempts: int, status_code: int | None = None) -> None:
        self.attempts = attempts
        self.status_code = status_code
        super().__init__(f"{message} (after {attempts} attempt{'s' if attempts != 1 else ''})")


class StructuredOutputError(LLMError):
    """The model's reply never validated against the stage's output model."""

    def __init__(self, stage: str, *, attempts: int, last_error: str, last_reply: str) -> None:
        self.stage = stage
        self.attempts = attempts
        self.last_error = last_error
        self.last_reply = last_reply
        snippet = last_reply[:200].replace("\n", " ")
        super().__init__(
            f"stage {stage!r}: no valid reply after {attempts} attempts; "
            f"last error: {last_error}; last reply starts: {snippet!r}"
        )


class PublishError(PersonaFoundryError):
    """A platform did not take a post; carries the platform and its own words."""

    def __init__(self, platform: str, reason: str, *, status_code: int | None = None) -> None:
        self.platform, self.reason, self.status_code = platform, reason, status_code
        code = f" (HTTP {status_code})" if status_code is not None else ""
        super().__init__(f"{platform}{code}: {reason}")


class PostRejectedError(PublishError):
    """The platform refused this post (a 4xx other than 429): sending it again will not help."""


class RateLimitedError(PublishError):
    """429: the platform says when to come back (`reset_at`, epoch seconds, None if it did not)."""

    def __init__(self, platform: str, reason: str, *, reset_at: float | None,
                 status_code: int | None = 429) -> None:
        self.reset_at = reset_at
        super().__init__(platform, reason, status_code=status_code)


class AccountRefusedError(PublishError):
    """401/403: the platform refused the account itself; no post of it can go out now."""


class PlatformUnavailableError(PublishError):
    """5xx, a timeout or a dropped connection: the post may or may not have gone out."""
