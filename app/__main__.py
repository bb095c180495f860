"""``python -m app serve``: migrate, seed the demo and serve with uvicorn, printing how to try it."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from app.config import ConfigError, load_settings
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
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve()
    return 2


if __name__ == "__main__":
    sys.exit(main())
