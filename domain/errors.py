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


class ItemsNotFound(NotFound):
    """Items of a bulk request that name no object of the caller; ``missing`` is ``(field, what)`` pairs."""

    def __init__(self, kind: str, missing: list[tuple[str, object]]) -> None:
        super().__init__(kind, missing[0][1])
        self.missing = missing


class PreconditionFailed(DomainError):
    """The object changed since the caller read it (``If-Match`` no longer matches its version)."""

    def __init__(self, kind: str, object_id: object, current_version: int) -> None:
        super().__init__(
            f"{kind} {object_id} has changed since you read it (it is now at version {current_version}): "
            "reload it and apply your change again"
        )
        self.current_version = current_version


class Unprocessable(DomainError):
    """The request is well-formed but what it points at cannot be used (e.g. a feed with bad rows).

    ``errors`` name each problem (``rows.17.price``); ``source`` says where they are.
    """

    def __init__(self, message: str, errors: list[InvalidField] | None = None, source: str = "body") -> None:
        super().__init__(message)
        self.errors = errors or []
        self.source = source


class UpstreamError(DomainError):
    """A service we call (the store, a seller's feed) is unreachable or refused the request."""


class UpstreamTimeout(UpstreamError):
    """A service we call did not answer in time."""
