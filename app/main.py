"""The ASGI app: ``app.main:app`` (built from ``litestar.toml`` + environment) and ``create_app``.

Lifecycle, in one place: start the database (and migrate), then the broker, then the services;
stop in reverse.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from litestar import Litestar, MediaType, Response, Router, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.middleware import DefineMiddleware
from litestar.response import File
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from app.auth import provide_principal, services_in, stream_authenticator, token_checker
from app.bodies import BodyRequest
from app.cli import TailCommand
from app.config import ConfigError, Settings, load_settings
from app.controllers.account import EventHistoryController, NotificationController, SettingsController
from app.controllers.auth import AuthController
from app.controllers.orders import OrderController
from app.controllers.products import ProductController
from app.controllers.push import PushController, service_worker
from app.controllers.sellers import SellerController
from app.errors import EXCEPTION_HANDLERS, log_exception
from app.idempotency import IdempotencyMiddleware
from app.logs import configure_logging, redact
from app.metrics import RequestTimer, metrics_endpoint
from app.openapi import document_version, finish_document, openapi_config
from app.outage import is_database_unavailable, outage_noticed
from app.ratelimit import RateLimitMiddleware
from domain.db import Database
from domain.demo import seed_demo
from domain.events import RECORDED_TYPES
from domain.push.keys import parse_private_key
from domain.push.settings import PushSettings
from domain.retention import prune_forever
from domain.services import Services
from domain.services.feeds import FeedSettings
from domain.store import ShopifySettings, TokenBox
from streams.broker import Broker, broker_for_url
from streams.hub import Hub, StreamSettings
from streams.metrics import Metrics
from streams.sse import sse_events
from streams.stats import ws_stats
from streams.tasks import cancel_and_wait
from streams.ws import ws_events

logger = logging.getLogger("dropsync.app")

READY_TIMEOUT_S = 2.0
STATIC_DIR = Path(__file__).resolve().parent / "static"


@get("/", include_in_schema=False, media_type=MediaType.HTML)
async def dashboard() -> File:
    """The live dashboard (a static page that talks to the API with the JavaScript client)."""
    return File(STATIC_DIR / "index.html", content_disposition_type="inline")


@get("/health", tags=["operations"], summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready", tags=["operations"], summary="Readiness: the database and the broker answer")
async def ready(state: State) -> Response[dict[str, str]]:
    checks = {"database": state.db.ping, "broker": state.broker.ping}
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            with anyio.fail_after(READY_TIMEOUT_S):
                await check()
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the reason is reported
            results[name] = f"unavailable: {type(exc).__name__}"
    healthy = all(result == "ok" for result in results.values())
    status = HTTP_200_OK if healthy else HTTP_503_SERVICE_UNAVAILABLE
    return Response({"status": "ready" if healthy else "not ready", **results}, status_code=status)


@asynccontextmanager
async def running_in_background(*jobs: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run ``jobs`` as tasks for the duration of the block; cancel and await them after it."""
    tasks = [asyncio.create_task(job) for job in jobs]
    for task in tasks:
        task.add_done_callback(_log_death)
    try:
        yield
    finally:
        await cancel_and_wait(tasks)


def _log_death(task: asyncio.Task[None]) -> None:
    """A background job must never die in silence."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("background job %s died", task.get_coro(), exc_info=task.exception())


def rate_limits(settings: Settings) -> DefineMiddleware:
    return DefineMiddleware(
        RateLimitMiddleware,
        auth_per_minute=settings.rate_limit_auth_per_minute,
        writes_per_second=settings.rate_limit_writes_per_second,
    )


def cors(settings: Settings) -> CORSConfig | None:
    if not settings.cors_allow_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_allow_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "Last-Event-ID"],
        expose_headers=["ETag", "Retry-After"],
        max_age=600,
    )


def report_outage(state: State, exc: BaseException) -> bool:
    """For background jobs: an unavailable database is logged once per outage (see app.outage)."""
    if not is_database_unavailable(exc):
        return False
    if "db" in state:
        outage_noticed(state, exc)
    return True


def push_settings_of(settings: Settings) -> PushSettings:
    """The push settings; raises :class:`ConfigError` for a VAPID key that cannot be read (the
    message never shows the key)."""
    if settings.vapid_private_key:
        try:
            parse_private_key(settings.vapid_private_key)
        except ValueError as exc:
            raise ConfigError(f"DROPSYNC_VAPID_PRIVATE_KEY: {exc}") from None
    return PushSettings(
        vapid_private_key=settings.vapid_private_key,
        vapid_subject=settings.vapid_subject,
        expo_url=settings.push_expo_url,
        expo_access_token=settings.expo_access_token,
        allow_loopback=settings.push_allow_loopback,
        ttl_s=settings.push_ttl_s,
        timeout_s=settings.push_timeout_s,
        retry_for_s=settings.push_retry_for_s,
        poll_s=settings.push_poll_s,
        concurrency=settings.push_concurrency,
    )


GC_THRESHOLDS = (10_000, 10, 10)
"""The cycle collector's thresholds once the app has started (CPython's default: 700, 10, 10).

A young collection starts after 700 more container objects are alive than at the last one: a
1,000-item bulk update has ~15,000 alive at once, so it ran ~20 of them, each walking everything
young (5-10 ms apiece with 1,000 streams open), and moved what its open transaction still held
into the older generations, which brought a full collection (50-90 ms: every object of every
open connection) every few bulks — a stall of every stream and request. With 10,000, a request's
objects are mostly freed before any collection sees them: in the ``mixed`` benchmark one young
collection (14 ms) ran in the measured 30 s, and the slowest bulk request went from 100-200 ms
to 52-64 ms. Cyclic garbage still goes: at most ~10,000 young objects wait for a collection."""


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the app; raises :class:`ConfigError` (one line) for a bad setting."""
    settings = settings or load_settings()
    metrics = Metrics()
    try:
        broker: Broker = broker_for_url(settings.broker_url, settings.broker_namespace, metrics)
    except ValueError as exc:
        raise ConfigError(redact(str(exc))) from None
    db = Database(
        settings.database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        postgres_timeout_s=settings.database_timeout_s,
    )
    push_settings = push_settings_of(settings)
    stream_settings = StreamSettings(
        heartbeat_s=settings.heartbeat_s,
        queue_size=settings.connection_queue_size,
        send_timeout_s=settings.send_timeout_s,
        sse_retry_ms=settings.sse_retry_ms,
        token_check_s=settings.token_check_s,
        public_origins=settings.public_origins,
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_format)
        await db.start()
        try:
            if settings.auto_migrate:
                await db.migrate()
            await broker.start()
            services = Services.build(
                db,
                broker,
                allow_signup=settings.allow_signup,
                token_ttl_s=settings.token_ttl_s,
                token_check_s=settings.token_check_s,
                feeds=FeedSettings(
                    timeout_s=settings.feed_timeout_s,
                    max_bytes=settings.feed_max_bytes,
                    max_rows=settings.feed_max_rows,
                    allow_private_hosts=settings.feed_allow_private_hosts,
                ),
                shopify=ShopifySettings(
                    api_version=settings.shopify_api_version,
                    base_url=settings.shopify_base_url or None,
                    timeout_s=settings.shopify_timeout_s,
                ),
                store_tokens=TokenBox(settings.store_token_key),
                push=push_settings,
                metrics_registry=metrics.registry,
            )
            await services.settings.seal_store_tokens()
            services.push.database_unavailable = functools.partial(report_outage, app.state)
            await services.push.start()
            if settings.demo:
                await seed_demo(services)
            app.state.services = services
            app.state.db = db
            app.state.broker = broker
            app.state.metrics = metrics
            app.state.hub = hub = Hub(
                broker,
                services.event_log,
                stream_authenticator(services),
                stream_settings,
                metrics,
                check_tokens=token_checker(services),
                event_types=RECORDED_TYPES,
            )
            hub.watch_signals()
            # What start-up built (modules, the app, the routes: ~100k objects) lives as long as the
            # process: keep it out of the collector's full passes, which would walk it again and
            # again (~100 ms each, a stall of every stream and request while a big write runs).
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
            pruner = prune_forever(
                db,
                days=settings.retention_days,
                min_events=settings.retention_min_events,
                every_s=settings.retention_check_every_s,
            )
            jobs = (hub.share_presence_forever(), hub.watch_sends_forever(), hub.check_tokens_forever())
            async with running_in_background(pruner, services.push.run_forever(), *jobs):
                yield
        finally:
            if "services" in app.state:
                await app.state.services.push.stop()
            if "hub" in app.state:
                app.state.hub.shutdown()
                app.state.hub.restore_signals()
            await broker.stop()
            await db.stop()

    # The request middleware (timing, rate limits, idempotency) wraps the request/response routes
    # only: a long-lived stream would keep their frames alive for nothing (1.5 KiB a connection).
    requests = Router(
        path="/",
        route_handlers=[
            dashboard,
            create_static_files_router(path="/static", directories=[STATIC_DIR], include_in_schema=False),
            health,
            ready,
            metrics_endpoint,
            AuthController,
            SellerController,
            ProductController,
            OrderController,
            PushController,
            service_worker,
            SettingsController,
            NotificationController,
            EventHistoryController,
            ws_stats,
        ],
        middleware=[
            RequestTimer,
            *([rate_limits(settings)] if settings.rate_limit else []),
            DefineMiddleware(IdempotencyMiddleware, max_body_bytes=settings.max_body_bytes),
        ],
    )

    def provide_services() -> Services:
        # No parameter on purpose: Litestar's reserved ``state`` argument would copy the app state
        # into a new State and validate it on every request (a quarter of a cheap request's time).
        return services_in(app.state)

    app = Litestar(
        route_handlers=[requests, sse_events, ws_events],
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "principal": Provide(provide_principal),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        plugins=[TailCommand()],
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        request_class=BodyRequest,
        logging_config=LoggingConfig(
            log_exceptions="always",
            disable_stack_trace=set(),  # log_exception decides: one INFO line for a client error
            exception_logging_handler=log_exception,
            configure_root_logger=False,
        ),
        cors_config=cors(settings),
        openapi_config=openapi_config(document_version()),
        debug=False,
    )
    finish_document(app)
    return app


def _app_from_environment() -> Litestar:
    try:
        return create_app()
    except ConfigError as exc:
        print(f"dropsync: configuration error: {exc}", file=sys.stderr)  # noqa: T201 - before logging exists
        raise SystemExit(2) from None


app = _app_from_environment()
