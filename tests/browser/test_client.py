"""The JavaScript client (app/static/dropsync.js) on its own, in the browser, against a real server.

Where a server cannot misbehave on demand (a half-open socket), a fake WebSocket stands in.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page

from tests.conftest import Account
from tests.support.servers import ServerProcess, free_port

pytestmark = pytest.mark.anyio

# Helpers defined in the page: `within(ms, promise)` bounds every wait of a test.
PRELUDE = """
window.within = (ms, promise) => Promise.race([
  promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)),
]);
window.sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
"""


async def module_page(context: BrowserContext, server: ServerProcess) -> Page:
    """A page of the server's origin (so that /static/dropsync.js imports) with the helpers."""
    page = await context.new_page()
    await page.goto(server.url + "/health")
    await page.evaluate(PRELUDE)
    return page


async def test_backoff_is_exponential_with_full_jitter_between_floor_and_ceiling(
    context: BrowserContext, dashboard_server: ServerProcess
) -> None:
    page = await module_page(context, dashboard_server)
    delays: dict[str, Any] = await page.evaluate(
        """async () => {
          const m = await import('/static/dropsync.js');
          const options = { floorMs: 1000, ceilingMs: 30000 };
          const attempts = [0, 1, 2, 3, 4, 10];
          return {
            lowest: attempts.map((a) => m.backoffDelay(a, options, () => 0)),
            highest: attempts.map((a) => m.backoffDelay(a, options, () => 1)),
            plain: attempts.map((a) => m.backoffDelay(a, { ...options, jitter: false })),
            oldApp: attempts.map((a) => m.backoffDelay(a, m.OLD_APP_RECONNECT)),
            oldAppTries: m.OLD_APP_RECONNECT.maxAttempts,
            unlimited: m.DEFAULT_RECONNECT.maxAttempts === Infinity,
          };
        }"""
    )
    assert delays["lowest"] == [1000] * 6
    assert delays["highest"] == [2000, 4000, 8000, 16000, 30000, 30000]
    assert delays["plain"] == [1000, 2000, 4000, 8000, 16000, 30000]
    assert delays["oldApp"] == [3000] * 6
    assert delays["oldAppTries"] == 5
    assert delays["unlimited"] is True


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_a_fixed_number_of_tries_then_offline(
    context: BrowserContext, dashboard_server: ServerProcess, transport: str
) -> None:
    page = await module_page(context, dashboard_server)
    states: list[list[Any]] = await page.evaluate(
        """async ([url, transport]) => {
          const { DropsyncClient } = await import('/static/dropsync.js');
          const states = [];
          const client = new DropsyncClient({
            url, token: 't', transport, share: false,
            reconnect: { floorMs: 30, ceilingMs: 30, maxAttempts: 5 },  // the old app's 5 x 3 s, faster
          });
          await within(5000, new Promise((resolve) => {
            client.onState((state, info) => {
              states.push([state, !!info.gaveUp]);
              if (info.gaveUp) resolve();
            });
            client.start();
          }));
          await sleep(200);  // and nothing after that
          client.stop();
          return states;
        }""",
        [f"http://127.0.0.1:{free_port()}", transport],
    )
    attempts = [state for state in states if state[0] == "connecting"]
    assert len(attempts) == 1 + 5, states
    assert states[-2] == ["offline", True], states  # then stop()'s own "offline"


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_resume_from_the_last_id_once_in_order_with_listeners(
    context: BrowserContext,
    dashboard_server: ServerProcess,
    api: httpx.AsyncClient,
    account: Account,
    transport: str,
) -> None:
    for name in ("One", "Two", "Three"):
        await api.post("/sellers", json={"name": name}, headers=account.headers)
    page = await module_page(context, dashboard_server)
    await page.evaluate(
        """async ([url, token, transport]) => {
          const { DropsyncClient } = await import('/static/dropsync.js');
          const seen = { all: [], added: [], removed: [] };
          const client = new DropsyncClient({ url, token, transport, lastEventId: 1 });
          client.on('*', (m) => seen.all.push([m.type, m.id ?? null]));
          client.on('seller_added', (m) => seen.added.push(m.data.name));
          const removed = (m) => seen.removed.push(m.id);
          client.on('seller_updated', removed);
          client.off('seller_updated', removed);
          window.client = client;
          window.seen = seen;
          await within(5000, new Promise((resolve) => {
            client.onState((state) => state === 'live' && resolve());
            client.start();
          }));
          await within(5000, (async () => { while (client.lastEventId < 3) await sleep(10); })());
        }""",
        [dashboard_server.url, account.token, transport],
    )
    sellers = (await api.get("/sellers", headers=account.headers)).json()["items"]
    await api.patch(f"/sellers/{sellers[0]['id']}", json={"name": "One Ltd"}, headers=account.headers)
    await api.post("/sellers", json={"name": "Four"}, headers=account.headers)
    seen: dict[str, Any] = await page.evaluate(
        """async () => {
          await within(5000, (async () => { while (client.lastEventId < 5) await sleep(10); })());
          client.stop();
          return seen;
        }"""
    )
    assert seen["all"] == [
        ["connected", None],
        ["seller_added", 2],
        ["seller_added", 3],
        ["seller_updated", 4],
        ["seller_added", 5],
    ]
    assert seen["added"] == ["Two", "Three", "Four"]
    assert seen["removed"] == []


async def test_types_filter(
    context: BrowserContext, dashboard_server: ServerProcess, api: httpx.AsyncClient, account: Account
) -> None:
    page = await module_page(context, dashboard_server)
    await page.evaluate(
        """async ([url, token]) => {
          const { DropsyncClient } = await import('/static/dropsync.js');
          window.types = [];
          window.client = new DropsyncClient({ url, token, transport: 'sse', types: ['system_notification'] });
          client.on('*', (m) => types.push(m.type));
          await within(5000, new Promise((resolve) => {
            client.onState((state) => state === 'live' && resolve());
            client.start();
          }));
        }""",
        [dashboard_server.url, account.token],
    )
    await api.post("/sellers", json={"name": "Filtered out"}, headers=account.headers)
    await api.post("/notifications", json={"title": "Kept"}, headers=account.headers)
    types = await page.evaluate(
        """async () => {
          await within(5000, (async () => { while (!types.includes('system_notification')) await sleep(10); })());
          client.stop();
          return types;
        }"""
    )
    assert types == ["connected", "system_notification"]


async def test_resync_required_calls_on_resync(
    context: BrowserContext, dashboard_server: ServerProcess, api: httpx.AsyncClient, account: Account
) -> None:
    await api.post("/sellers", json={"name": "Only one"}, headers=account.headers)
    page = await module_page(context, dashboard_server)
    result: dict[str, Any] = await page.evaluate(
        """async ([url, token]) => {
          const { DropsyncClient } = await import('/static/dropsync.js');
          let client;
          const data = await within(5000, new Promise((resolve) => {
            client = new DropsyncClient({ url, token, transport: 'ws', lastEventId: 1000000, onResync: resolve });
            client.start();
          }));
          const lastEventId = client.lastEventId;
          client.stop();
          return { data, lastEventId };
        }""",
        [dashboard_server.url, account.token],
    )
    assert result["data"]["latest_id"] == 1
    assert result["lastEventId"] == 1  # goes on from latest_id


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_a_refused_token_stops_without_retrying(
    context: BrowserContext, dashboard_server: ServerProcess, transport: str
) -> None:
    page = await module_page(context, dashboard_server)
    result: dict[str, Any] = await page.evaluate(
        """async ([url, transport]) => {
          const { DropsyncClient } = await import('/static/dropsync.js');
          const states = [];
          let client;
          const error = await within(5000, new Promise((resolve) => {
            client = new DropsyncClient({
              url, token: 'not-a-token', transport, share: false, onError: resolve,
              reconnect: { floorMs: 20, ceilingMs: 20 },
            });
            client.onState((state) => states.push(state));
            client.start();
          }));
          await sleep(300);
          const state = client.state;
          client.stop();
          return { error, states, state };
        }""",
        [dashboard_server.url, transport],
    )
    assert result["error"]["code"] == "unauthorized"
    assert result["state"] == "offline"
    assert result["states"].count("connecting") == 1, result["states"]


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_an_unknown_type_stops_without_retrying_and_names_it(
    context: BrowserContext, dashboard_server: ServerProcess, account: Account, transport: str
) -> None:
    page = await module_page(context, dashboard_server)
    result: dict[str, Any] = await page.evaluate(
        """async ([url, token, transport]) => {
          const { DropsyncClient } = await import('/static/dropsync.js');
          const states = [];
          let client;
          const error = await within(5000, new Promise((resolve) => {
            client = new DropsyncClient({
              url, token, transport, share: false, onError: resolve, types: ['order_create'],
              reconnect: { floorMs: 20, ceilingMs: 20 },
            });
            client.onState((state) => states.push(state));
            client.start();
          }));
          await sleep(300);
          const state = client.state;
          client.stop();
          return { error, states, state };
        }""",
        [dashboard_server.url, account.token, transport],
    )
    assert result["error"]["code"] == "bad_request"
    assert "order_create" in result["error"]["message"]
    assert result["state"] == "offline"
    assert result["states"].count("connecting") == 1, result["states"]


FAKE_SOCKET = """
window.FakeSocket = class FakeSocket {
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closedAt = null;
    FakeSocket.made.push(this);
    setTimeout(() => {
      this.connectedAt = Date.now();
      const connected = { type: 'connected', data: { transport: 'ws', heartbeat_s: 15, last_event_id: 0 } };
      this.onmessage && this.onmessage({ data: JSON.stringify(connected) });
    }, 5);
  }
  send(text) {
    this.sent.push(text);
    if (FakeSocket.answers) {
      setTimeout(() => this.onmessage && this.onmessage({ data: '{"type":"pong","timestamp":1}' }), 5);
    }
  }
  close() { this.closedAt = Date.now(); }
};
FakeSocket.made = [];
"""


async def test_a_half_open_websocket_is_noticed_within_two_intervals(
    context: BrowserContext, dashboard_server: ServerProcess
) -> None:
    page = await module_page(context, dashboard_server)
    await page.evaluate(FAKE_SOCKET)
    result: dict[str, Any] = await page.evaluate(
        """async () => {
          const { DropsyncClient } = await import('/static/dropsync.js');
          const options = {
            url: 'http://fake', token: 't', transport: 'ws', share: false, heartbeatMs: 100,
            WebSocket: FakeSocket, reconnect: { floorMs: 20, ceilingMs: 20 },
          };
          // A healthy peer answers every ping: the connection stays.
          FakeSocket.answers = true;
          const healthy = new DropsyncClient(options).start();
          await sleep(700);
          const healthySockets = FakeSocket.made.length;
          const pings = FakeSocket.made[0].sent.filter((text) => JSON.parse(text).type === 'ping').length;
          healthy.stop();

          // A half-open peer takes pings and never answers: replaced after two silent intervals.
          FakeSocket.made = [];
          FakeSocket.answers = false;
          const states = [];
          const silent = new DropsyncClient(options);
          silent.onState((state) => states.push(state));
          silent.start();
          await within(3000, (async () => { while (FakeSocket.made.length < 2) await sleep(5); })());
          const [dead] = FakeSocket.made;
          silent.stop();
          return {
            healthySockets, pings, states,
            noticedAfter: dead.closedAt - dead.connectedAt,
            deadPings: dead.sent.length,
          };
        }"""
    )
    assert result["healthySockets"] == 1
    assert result["pings"] >= 5
    assert 200 <= result["noticedAfter"] < 450, result
    assert result["deadPings"] >= 1
    assert result["states"][:4] == ["connecting", "live", "offline", "connecting"], result["states"]


async def test_sse_error_envelopes_are_heard_as_stream_error_and_any_failure_reconnects_from_the_last_id(
    context: BrowserContext, dashboard_server: ServerProcess
) -> None:
    """The server sends an `error` envelope as SSE event `stream_error` (`error` is EventSource's
    own failure event); an EventSource that fails, even for good (CLOSED after a proxy's 502), is
    replaced by the client with a new one from the last id."""
    page = await module_page(context, dashboard_server)
    result: dict[str, Any] = await page.evaluate(
        """async (url) => {
          const { DropsyncClient } = await import('/static/dropsync.js');
          const sources = [];
          class FakeEventSource {
            static CLOSED = 2;
            constructor(href) { this.url = href; this.listeners = {}; this.readyState = 0; sources.push(this); }
            addEventListener(name, fn) { this.listeners[name] = fn; }
            close() { this.readyState = 2; }
            emit(name, data) { this.listeners[name]({ data: JSON.stringify(data) }); }
          }
          const errors = [];
          const client = new DropsyncClient({
            url, token: 't', transport: 'sse', share: false, EventSource: FakeEventSource,
            reconnect: { floorMs: 10, ceilingMs: 10 },
          });
          client.on('error', (message) => errors.push(message.data.code));
          client.start();
          await within(2000, (async () => { while (!sources.length) await sleep(5); })());
          const first = sources[0];
          first.emit('connected', { type: 'connected', data: { heartbeat_s: 15, last_event_id: 0 } });
          first.emit('system_notification', { id: 7, type: 'system_notification', data: {} });
          first.emit('stream_error', { type: 'error', data: { code: 'server_restart', message: 'bye' } });
          first.readyState = 2;  // CLOSED: EventSource itself would never come back
          first.onerror({});
          await within(2000, (async () => { while (sources.length < 2) await sleep(5); })());
          client.stop();
          return { listened: Object.keys(first.listeners), errors, second: sources[1].url, closed: first.readyState };
        }""",
        dashboard_server.url,
    )
    assert "stream_error" in result["listened"]
    assert result["errors"] == ["server_restart"]
    assert "last_event_id=7" in result["second"]
