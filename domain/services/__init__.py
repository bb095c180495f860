"""The domain's services, wired once per process around one database and one broker."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from domain.db import Database
from domain.push.service import PushService
from domain.push.settings import PushSettings
from domain.services.bulk import BulkService
from domain.services.event_log import EventLog
from domain.services.feeds import FeedService, FeedSettings
from domain.services.idempotency import IdempotencyStore
from domain.services.notifications import NotificationService
from domain.services.orders import OrderService
from domain.services.products import ProductService
from domain.services.sellers import SellerService
from domain.services.settings import SettingsService
from domain.services.store_sync import StoreSyncService
from domain.services.users import UserService
from domain.store import ShopifySettings, Stores, TokenBox
from domain.uow import UnitOfWork
from streams.broker import Broker


@dataclass(frozen=True, slots=True)
class Services:
    users: UserService
    sellers: SellerService
    products: ProductService
    orders: OrderService
    settings: SettingsService
    notifications: NotificationService
    event_log: EventLog
    bulk: BulkService
    feeds: FeedService
    store_sync: StoreSyncService
    stores: Stores
    idempotency: IdempotencyStore
    push: PushService

    @classmethod
    def build(
        cls,
        db: Database,
        broker: Broker,
        *,
        allow_signup: bool,
        token_ttl_s: int,
        token_check_s: float = 30.0,
        feeds: FeedSettings | None = None,
        shopify: ShopifySettings | None = None,
        store_tokens: TokenBox | None = None,
        push: PushSettings | None = None,
        metrics_registry: CollectorRegistry | None = None,
    ) -> Services:
        uow = UnitOfWork(db, broker)
        tokens = store_tokens or TokenBox()
        stores = Stores(shopify or ShopifySettings(), tokens)
        push_service = PushService(db, push or PushSettings(), metrics_registry)
        uow.after_commit.append(push_service.wake)
        idempotency = IdempotencyStore()
        uow.before_commit.append(idempotency.before_commit)  # the key commits with the change
        return cls(
            users=UserService(db, allow_signup=allow_signup, token_ttl_s=token_ttl_s, token_check_s=token_check_s),
            sellers=SellerService(uow),
            products=ProductService(uow),
            orders=OrderService(uow, stores),
            settings=SettingsService(uow, tokens),
            notifications=NotificationService(uow),
            event_log=EventLog(),
            bulk=BulkService(uow),
            feeds=FeedService(uow, feeds or FeedSettings()),
            store_sync=StoreSyncService(uow, stores),
            stores=stores,
            idempotency=idempotency,
            push=push_service,
        )
