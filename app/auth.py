"""Who is calling: ``Authorization: Bearer <token>`` on every route that asks for a ``principal``.

The stream routes also take the token from the ``access_token`` cookie or query parameter
(EventSource and browser WebSockets cannot set headers); see :func:`streams.tokens.stream_token`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException

from domain.errors import Unauthorized
from domain.services import Services
from domain.services.users import Principal
from streams.tokens import bearer_token

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def authenticate(services: Services, token: str | None) -> Principal:
    if not token:
        raise NotAuthorizedException(detail="missing bearer token", headers=_CHALLENGE)
    try:
        return await services.users.authenticate(token)
    except Unauthorized as exc:
        raise NotAuthorizedException(detail=str(exc), headers=_CHALLENGE) from None


def services_in(state: State) -> Services:
    """The services the app's lifespan put in its ``state``."""
    services: Services | None = state.get("services")
    if services is None:
        raise RuntimeError("services are not ready: the app's lifespan has not started")
    return services


def stream_authenticator(services: Services) -> Callable[[str | None], Awaitable[int]]:
    """The streams' view of auth: a token in, a user id out, :class:`PermissionError` if bad."""

    async def authenticate_stream(token: str | None) -> int:
        if not token:
            raise PermissionError("missing access token")
        try:
            return (await services.users.authenticate(token)).user_id
        except Unauthorized as exc:
            raise PermissionError(str(exc)) from None

    return authenticate_stream


def token_checker(services: Services) -> Callable[[Collection[str]], Awaitable[set[str]]]:
    """For the streams' periodic check: which of the open streams' tokens are still valid."""
    return services.users.valid_tokens


async def provide_principal(request: ASGIConnection[Any, Any, Any, Any], services: Services) -> Principal:
    """The caller of a REST route: bearer header only (a token in a URL leaks into logs and history).

    It takes ``services`` (rather than finding them itself) so that Litestar resolves the two one
    after the other: two independent dependencies of a route run in a task group of their own,
    which costs more than the whole of a cheap request."""
    return await authenticate(services, bearer_token(request))
