"""The project's exception hierarchy (one base, so callers can catch ours and not others'), and how
messages quote what the user wrote."""

from __future__ import annotations

import json
from collections.abc import Sequence


def quoted(value: str) -> str:
    """A value as a TOML string: "5m", quotes and backslashes escaped, as the user writes it in the config."""
    return json.dumps(value, ensure_ascii=False)


class MepdError(Exception):
    """Base of every error mepd raises on purpose."""


class ConfigError(MepdError):
    """One problem in one config file, at one key path; prints as one line."""

    def __init__(self, file: str, path: str, message: str) -> None:
        super().__init__(file, path, message)
        self.file = file
        self.path = path
        self.message = message

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}: " if self.path else f"{self.file}: "
        return where + self.message


class ConfigErrors(MepdError):  # noqa: N818 - it carries several ConfigError
    """Every problem found in a config file, so the user fixes them in one go."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        super().__init__(*errors)
        self.errors = tuple(errors)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class AlreadyRunningError(MepdError):
    """Another live daemon owns the control socket."""


class ApiError(MepdError):
    """A request to the control API failed; `status` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message
