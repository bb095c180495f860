"""``litestar --app app.main:app tail``: the same ``tail`` as ``python -m app tail``, as a Litestar CLI command."""

from __future__ import annotations

import click
from litestar.plugins import CLIPluginProtocol

from app.tail import TailOptions, run_tail


class TailCommand(CLIPluginProtocol):
    def on_cli_init(self, cli: click.Group) -> None:
        @cli.command(name="tail", help="Follow your events from the terminal, one a line.")
        @click.option("--url", default="", help="the server (default: the one `serve` starts, DROPSYNC_PORT)")
        @click.option("--token", help="an access token (or give --username and --password)")
        @click.option("--username")
        @click.option("--password")
        @click.option("--transport", type=click.Choice(["sse", "ws"]), default="sse", show_default=True)
        @click.option("--last-event-id", type=int, help="resume after this id (default: from now)")
        @click.option("--types", help="only these event types, comma-separated")
        @click.option("--max-events", type=int, help="exit after printing this many events")
        def tail_command(
            url: str,
            token: str | None,
            username: str | None,
            password: str | None,
            transport: str,
            last_event_id: int | None,
            types: str | None,
            max_events: int | None,
        ) -> None:
            options = TailOptions(url, token, username, password, transport, last_event_id, types, max_events)
            raise SystemExit(run_tail(options))
