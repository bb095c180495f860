"""Domain errors: no HTTP in here. ``app.errors`` maps each to its status code, once."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a service raises on purpose; ``str(error)`` is safe to show the user."""


class NotFound(DomainError):
    """The object does not exist, or belongs to another user (the two look the same)."""

    def __init__(self, kind: str, object_id: object) -> None:
        super().__init__(f"{kind} {object_id} not found")
        self.kind = kind
        self.object_id = object_id


class Conflict(DomainError):
    """The change clashes with the current state: a taken key or an illegal status move."""


class Forbidden(DomainError):
    """The action is switched off for everyone (e.g. sign-up), not a question of ownership."""


class Unauthorized(DomainError):
    """Bad credentials or a bad, expired or revoked token."""


class InvalidField(DomainError):
    """A value passed type checks but breaks a rule; ``field`` is its dotted path in the body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidFields(DomainError):
    """Several :class:`InvalidField` found in one body, reported together."""

    def __init__(self, errors: list[InvalidField]) -> None:
        super().__init__("; ".join(str(error) for error in errors))
        self.errors = errors
