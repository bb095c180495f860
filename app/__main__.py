"""``python -m app serve``: migrate, seed the demo and serve with uvicorn, printing how to try it."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from app.config import ConfigError, load_settings
from app.tail import TailOptions, run_tail
from domain.demo import DEMO_PASSWORD, DEMO_USERNAME


def serve() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"dropsync: configuration error: {exc}", file=sys.stderr)
        return 2
    base = f"http://{settings.host}:{settings.port}"
    print(f"dropsync on {base}  (database {settings.database_url}, broker {settings.broker_url})")
    if settings.demo:
        print("Try it with the demo account:")
        print(
            f"  TOKEN=$(curl -s -X POST {base}/auth/token -H 'Content-Type: application/json' "
            f'-d \'{{"username": "{DEMO_USERNAME}", "password": "{DEMO_PASSWORD}"}}\' '
            "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
        )
        print(f'  curl -s {base}/products -H "Authorization: Bearer $TOKEN"')
        print(f"  curl -s '{base}/events/history?after=0' -H \"Authorization: Bearer $TOKEN\"")
    print(f"API docs: {base}/schema/swagger")
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="dropsync")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the API (the settings come from litestar.toml and DROPSYNC_*)")
    follow = commands.add_parser("tail", help="follow your events from the terminal, one a line")
    follow.add_argument("--url", default="http://127.0.0.1:8000", help="the server (default %(default)s)")
    follow.add_argument("--token", help="an access token (or give --username and --password)")
    follow.add_argument("--username")
    follow.add_argument("--password")
    follow.add_argument("--transport", choices=["sse", "ws"], default="sse")
    follow.add_argument("--last-event-id", type=int, help="resume after this id (default: from now)")
    follow.add_argument("--types", help="only these event types, comma-separated")
    follow.add_argument("--max-events", type=int, help="exit after printing this many events")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve()
    return run_tail(
        TailOptions(
            url=args.url,
            token=args.token,
            username=args.username,
            password=args.password,
            transport=args.transport,
            last_event_id=args.last_event_id,
            types=args.types,
            max_events=args.max_events,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
