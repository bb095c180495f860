"""``/auth``: register, issue and revoke tokens, who am I."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, get, post
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from app.schemas import Credentials, Registration
from domain.services import Services
from domain.services.users import Principal


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post("/register", status_code=HTTP_201_CREATED, summary="Create an account")
    async def register(self, data: Registration, services: Services) -> dict[str, Any]:
        return await services.users.register(data.username, data.password)

    @post("/token", status_code=HTTP_200_OK, summary="Exchange username and password for a bearer token")
    async def token(self, data: Credentials, services: Services) -> dict[str, Any]:
        return await services.users.issue_token(data.username, data.password)

    @delete("/token", summary="Revoke the token in use")
    async def revoke(self, principal: Principal, services: Services) -> None:
        await services.users.revoke(principal)

    @get("/me", summary="The signed-in user")
    async def me(self, principal: Principal, services: Services) -> dict[str, Any]:
        return services.users.me(principal)
