"""Domain errors. Each carries the manual's code so every front end maps it the same way."""

from __future__ import annotations


class UVoxError(Exception):
    """A refusal a user can act on. ``code`` is one of uvox.api.v1.codes."""

    def __init__(self, code: str, detail: str = "", **fields: str) -> None:
        super().__init__(detail or code)
        self.code = code
        self.detail = detail
        self.fields = fields


class NotFound(Exception):
    """An object the caller named does not exist (or belongs to someone else)."""


class Conflict(Exception):
    """The request contradicts what is stored (a duplicate name, a limit reached)."""
