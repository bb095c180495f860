"""Per-user settings. The store access token is write-only: never in a response or an event, and
encrypted at rest (:mod:`domain.store.tokens`)."""

from __future__ import annotations

from typing import Any

from domain import events
from domain.errors import NotFound
from domain.push.messages import DEFAULT_PUSH_TYPES, decode_push_types, encode_push_types
from domain.services.common import DEFAULT_THRESHOLD, Row, Values
from domain.store.tokens import TokenBox
from domain.tables import Product, UserSettings
from domain.uow import UnitOfWork
from domain.values import iso, money, now_ms, parse_money

DEFAULTS: dict[str, Any] = {
    "low_stock_threshold": DEFAULT_THRESHOLD,
    "default_markup_hundredths": 3000,
    "currency": "USD",
    "shopify_domain": None,
    "shopify_access_token": None,
    "push_types": encode_push_types(DEFAULT_PUSH_TYPES),
}


def settings_json(row: Row) -> Row:
    return {
        "low_stock_threshold": row["low_stock_threshold"],
        "default_markup_percent": money(row["default_markup_hundredths"]),
        "currency": row["currency"],
        "store": {
            "shopify_domain": row["shopify_domain"],
            "connected": bool(row["shopify_domain"] and row["shopify_access_token"]),
        },
        "push_types": decode_push_types(row["push_types"]),
        "updated_at": iso(row["updated_at"]),
    }


class SettingsService:
    def __init__(self, uow: UnitOfWork, tokens: TokenBox | None = None) -> None:
        self.uow = uow
        self.tokens = tokens or TokenBox()

    async def seal_store_tokens(self) -> int:
        """Encrypt the store tokens saved in clear before encryption existed; how many there were."""
        if self.tokens.fernet is None:
            return 0
        rows = await UserSettings.select(UserSettings.user_id, UserSettings.shopify_access_token).where(
            UserSettings.shopify_access_token.is_not_null()
        )
        sealed = 0
        for row in rows:
            if not self.tokens.is_sealed(row["shopify_access_token"]):
                await UserSettings.update(
                    {UserSettings.shopify_access_token: self.tokens.encrypt(row["shopify_access_token"])}
                ).where(UserSettings.user_id == row["user_id"])
                sealed += 1
        return sealed

    async def get(self, user_id: int) -> Row:
        return settings_json(await self._row(user_id))

    async def update(self, user_id: int, fields: dict[str, Any], *, replace: bool = False) -> Row:
        """Apply ``fields`` (API names); with ``replace`` the omitted ones return to their defaults."""
        values = dict(DEFAULTS) if replace else {}
        for key, value in fields.items():
            if key == "default_markup_percent":
                values["default_markup_hundredths"] = parse_money(value, key)
            elif key == "store":
                values.update(
                    {name: value[name] for name in ("shopify_domain", "shopify_access_token") if name in value}
                )
            elif key == "push_types":
                values["push_types"] = encode_push_types(value)
            else:
                values[key] = value
        async with self.uow.write(user_id) as change:
            row = await self._row(user_id)
            token = values.get("shopify_access_token")
            if token is not None:
                stored = row["shopify_access_token"]
                unchanged = (
                    stored is not None and self.tokens.is_sealed(stored) and self.tokens.decrypt(stored) == token
                )
                values["shopify_access_token"] = stored if unchanged else self.tokens.encrypt(token)
            diff: Values = {key: value for key, value in values.items() if row[key] != value}
            if not diff:
                return settings_json(row)
            await UserSettings.update({**diff, "updated_at": now_ms()}).where(UserSettings.user_id == user_id)
            if "low_stock_threshold" in diff:
                await _restate_stock(user_id, diff["low_stock_threshold"])
            updated = settings_json(await self._row(user_id))
            change.record(events.SETTINGS_UPDATED, updated)
        return updated

    @staticmethod
    async def _row(user_id: int) -> Row:
        row: Row | None = await UserSettings.select().where(UserSettings.user_id == user_id).first()
        if row is None:  # every user gets a settings row when created
            raise NotFound("settings of user", user_id)
        return row


async def _restate_stock(user_id: int, threshold: int) -> None:
    """Re-place the products that follow the user's threshold against the new one, recording no alert.

    A product's stored stock state is what an alert is a crossing *from*: left stale, the next stock
    change would miss a crossing of the new threshold, or report one that did not happen.
    """
    await Product.raw(
        "UPDATE products SET stock_state = CASE WHEN stock <= 0 THEN 'out' WHEN stock <= {} THEN 'low' ELSE 'ok' END"
        " WHERE user_id = {} AND low_stock_threshold IS NULL",
        threshold,
        user_id,
    )
