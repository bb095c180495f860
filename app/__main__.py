"""``python -m app serve``: migrate, seed the demo and serve with uvicorn, printing how to try it."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

import uvicorn

from app.config import ConfigError, Settings, load_settings
from app.logs import redact_url
from app.serving import uvicorn_options
from app.tail import TailOptions, run_tail, server_url
from domain.demo import DEMO_PASSWORD, DEMO_USERNAME

SIGN_IN_LINE = (
    "TOKEN=$(curl -sS -X POST {base}/auth/token -H 'Content-Type: application/json' "
    '-d \'{{"username": "{username}", "password": "{password}"}}\' '
    '| python3 -c \'import json,sys; a=json.loads(sys.stdin.read() or "{{}}"); '
    'print(a.get("access_token") or sys.exit("sign-in failed: " + a.get("detail", "no answer")))\')'
)
"""Sign in from a shell: the token on stdout, or the server's reason on stderr (exit status 1)."""


def banner(settings: Settings) -> list[str]:
    """What ``serve`` prints before it starts: where it listens and how to try it."""
    base = server_url(settings)
    python = shlex.quote(os.path.relpath(sys.executable)) if sys.prefix != sys.base_prefix else "python3"
    database, broker = redact_url(settings.database_url), redact_url(settings.broker_url)
    lines = [f"dropsync on {base}  (database {database}, broker {broker})"]
    if settings.demo:
        lines += [
            "Try it with the demo account:",
            "  " + SIGN_IN_LINE.format(base=base, username=DEMO_USERNAME, password=DEMO_PASSWORD),
            f'  curl -s {base}/products -H "Authorization: Bearer $TOKEN"',
            f"  curl -N '{base}/events?access_token='$TOKEN'&last_event_id=0'",
            f"  {python} -m app tail --url {base} --username {DEMO_USERNAME} --password {DEMO_PASSWORD}",
        ]
    lines.append(f"API docs: {base}/schema/swagger (and {base}/schema/redoc)")
    return lines


def serve() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"dropsync: configuration error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(banner(settings)), flush=True)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Protocol-level keepalive on the heartbeat: a peer that does not answer a ping within
        # heartbeat_s is closed (1011), so a dead phone is let go within two heartbeats.
        ws_ping_interval=settings.heartbeat_s,
        ws_ping_timeout=settings.heartbeat_s,
        **uvicorn_options(settings),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="dropsync")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the API (the settings come from litestar.toml and DROPSYNC_*)")
    follow = commands.add_parser("tail", help="follow your events from the terminal, one a line")
    follow.add_argument(
        "--url", default="", help="the server (default: the one `serve` starts, from litestar.toml and DROPSYNC_PORT)"
    )
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
