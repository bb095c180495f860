"""Which store connector serves a user: Shopify when the user's settings hold a shop and a token,
else the local store (see :mod:`domain.store.base` for the interface)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from domain.store.base import StoreConnector
from domain.store.local import LocalStore, is_local_id
from domain.store.shopify import ShopifySettings, ShopifyStore
from domain.store.tokens import TokenBox
from domain.tables import UserSettings


class Stores:
    def __init__(self, shopify: ShopifySettings, tokens: TokenBox | None = None) -> None:
        self.shopify = shopify
        self.tokens = tokens or TokenBox()

    @asynccontextmanager
    async def open(self, user_id: int, *, store_id: str | None = None) -> AsyncIterator[StoreConnector]:
        """The user's connector for the duration of the block.

        ``store_id`` is the id of an object the store handed out earlier: an id of the local
        store always goes to the local store, whatever the settings say now.
        """
        row = (
            await UserSettings.select(UserSettings.shopify_domain, UserSettings.shopify_access_token)
            .where(UserSettings.user_id == user_id)
            .first()
        )
        domain = row["shopify_domain"] if row else None
        token = row["shopify_access_token"] if row else None
        if is_local_id(store_id) or not (domain and token):
            yield LocalStore(user_id)
            return
        access_token = self.tokens.decrypt(token)
        async with ShopifyStore(shop_domain=domain, access_token=access_token, settings=self.shopify) as store:
            yield store


__all__ = ["LocalStore", "ShopifySettings", "ShopifyStore", "StoreConnector", "Stores", "TokenBox"]
