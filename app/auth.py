"""Who is calling: ``Authorization: Bearer <token>`` on every route that asks for a ``principal``.

The stream routes also take the token from the ``access_token`` cookie or query parameter
(EventSource and browser WebSockets cannot set headers); see :func:`token_from_connection`.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException

from domain.errors import Unauthorized
from domain.services import Services
from domain.services.users import Principal

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def token_from_connection(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """Header first, then the ``access_token`` cookie, then the ``access_token`` query parameter."""
    return (
        bearer_token(connection)
        or connection.cookies.get("access_token")
        or connection.query_params.get("access_token")
    )


async def authenticate(services: Services, token: str | None) -> Principal:
    if not token:
        raise NotAuthorizedException(detail="missing bearer token", headers=_CHALLENGE)
    try:
        return await services.users.authenticate(token)
    except Unauthorized as exc:
        raise NotAuthorizedException(detail=str(exc), headers=_CHALLENGE) from None


def provide_services(state: State) -> Services:
    services: Services | None = state.get("services")
    if services is None:
        raise RuntimeError("services are not ready: the app's lifespan has not started")
    return services


async def provide_principal(request: ASGIConnection[Any, Any, Any, Any], services: Services) -> Principal:
    """The caller of a REST route: bearer header only (a token in a URL leaks into logs and history)."""
    return await authenticate(services, bearer_token(request))
