/**
 * The client in Node without a DOM (WebSocket only, as in React Native) against a real server:
 * connect, events, a server restart, resuming without loss, token refresh, and the failures that
 * must be quick (a refused connection, a non-101 answer) or final (setup mistakes, a bad token).
 *
 * Run: node --experimental-websocket --test test/   (Node 20; Node 22 has WebSocket built in)
 */

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";

import {
  CONNECTION_TYPES,
  DropsyncClient,
  EVENT_TYPES,
  OLD_APP_RECONNECT,
  REASONS,
  backoffDelay,
  reasonText,
} from "../dropsync.js";
import { Server, freePort, sleep, until, within } from "./support/server.js";

const FAST = { floorMs: 50, ceilingMs: 200 };

/** A client whose messages and states are recorded; `closeAll()` stops every client made. */
const made = [];
function recorded(options) {
  const client = new DropsyncClient({ transport: "ws", reconnect: FAST, ...options });
  const log = { messages: [], events: [], states: [], errors: [] };
  const onError = options.onError;
  client.options.onError = (error) => {
    log.errors.push(error);
    onError && onError(error);
  };
  client.on("*", (message) => {
    log.messages.push(message);
    if (typeof message.id === "number") {
      log.events.push(message);
    }
  });
  client.onState((state, info) => log.states.push([state, info]));
  made.push(client);
  return { client, log };
}

function live(client, ms = 5000) {
  return until(() => client.state === "live", ms, "live");
}

function idsOf(events) {
  return events.map((event) => event.id);
}

function assertGapless(events, after) {
  const ids = idsOf(events).filter((id) => id > after);
  assert.deepEqual(ids, Array.from({ length: ids.length }, (_, index) => after + 1 + index), `ids ${ids}`);
}

after(() => {
  for (const client of made) {
    client.stop();
  }
});

test("imports and runs without a DOM", () => {
  assert.equal(typeof window, "undefined");
  assert.equal(typeof document, "undefined");
  assert.equal(typeof EventSource, "undefined");
  assert.equal(typeof WebSocket, "function", "run with --experimental-websocket on Node 20");
  assert.equal(EVENT_TYPES.length, 20);
  assert.deepEqual([...CONNECTION_TYPES], ["connected", "error", "resync_required"]);
  assert.equal(backoffDelay(0, OLD_APP_RECONNECT), 3000);
  assert.equal(reasonText("server_restart"), "the server is restarting");
  assert.equal(reasonText("some_new_code"), "some new code");
  assert.ok(Object.values(REASONS).every((text) => typeof text === "string" && text.length > 0));
});

describe("against a server", () => {
  const server = new Server({ env: { DROPSYNC_TOKEN_CHECK_S: "0.2" } });
  before(() => server.start());
  after(() => server.close());

  test("connects and delivers each event once, in order, with its data", async () => {
    const user = await server.newUser();
    const { client, log } = recorded({ url: server.url, token: user.token });
    client.start();
    await live(client);
    assert.equal(client.transport, "ws");
    assert.equal(client.role, "solo");
    assert.equal(log.messages[0].type, "connected");
    assert.equal(log.messages[0].data.transport, "ws");

    const product = await server.api("/products", {
      method: "POST",
      token: user.token,
      body: { sku: "MUG-1", name: "Camping mug", price: "12.99", stock: 40 },
    });
    await server.api(`/products/${product.id}`, {
      method: "PATCH",
      token: user.token,
      body: { stock: 0, price: "13.50" },
    });
    await until(() => log.events.length >= 5, 5000, "five events");
    assert.deepEqual(
      log.events.map((event) => event.type),
      ["product_added", "product_updated", "product_stock_changed", "product_price_changed", "stock_out"],
    );
    assertGapless(log.events, 0);
    const [added, updated, stock, price, out] = log.events;
    assert.equal(added.data.sku, "MUG-1");
    assert.deepEqual(updated.data.changed.sort(), ["price", "stock"]);
    assert.equal(updated.data.version, 2);
    assert.deepEqual([stock.data.old, stock.data.new], [40, 0]);
    assert.deepEqual([price.data.old, price.data.new], ["12.99", "13.50"]);
    assert.equal(out.data.product_id, product.id);
    assert.equal(client.lastEventId, out.id);
    client.stop();
    assert.equal(client.state, "offline");
  });

  test("a listener that throws does not stop delivery to the others", async () => {
    const user = await server.newUser();
    const { client, log } = recorded({ url: server.url, token: user.token });
    const seen = [];
    const originalError = console.error;
    const reported = [];
    console.error = (error) => reported.push(error);
    try {
      client.on("seller_added", () => {
        throw new Error("a broken listener");
      });
      client.on("seller_added", (event) => seen.push(event.data.name));
      client.start();
      await live(client);
      await server.api("/sellers", { method: "POST", token: user.token, body: { name: "Acme" } });
      await until(() => seen.length === 1, 5000, "the second listener");
    } finally {
      console.error = originalError;
    }
    assert.deepEqual(seen, ["Acme"]);
    assert.equal(reported.length, 1);
    assert.equal(log.events.length, 1);
  });

  test("resumes from its last id without loss or repeat", async () => {
    const user = await server.newUser();
    const first = recorded({ url: server.url, token: user.token });
    first.client.start();
    await live(first.client);
    await server.api("/sellers", { method: "POST", token: user.token, body: { name: "One" } });
    await until(() => first.log.events.length === 1, 5000, "the first event");
    first.client.stop();
    const resumeFrom = first.client.lastEventId;

    // Away: three changes happen meanwhile.
    for (const name of ["Two", "Three", "Four"]) {
      await server.api("/sellers", { method: "POST", token: user.token, body: { name } });
    }
    const second = recorded({ url: server.url, token: user.token, lastEventId: resumeFrom });
    second.client.start();
    await until(() => second.log.events.length === 3, 5000, "the three missed events");
    await server.api("/notifications", { method: "POST", token: user.token, body: { title: "live again" } });
    await until(() => second.log.events.length === 4, 5000, "the live event");
    assert.deepEqual(
      second.log.events.map((event) => event.data.name || event.data.title),
      ["Two", "Three", "Four", "live again"],
    );
    assertGapless(second.log.events, resumeFrom);
    assert.equal(second.log.messages[0].data.last_event_id, resumeFrom);
  });

  test("resync_required moves to latest_id and calls onResync", async () => {
    const user = await server.newUser();
    await server.api("/sellers", { method: "POST", token: user.token, body: { name: "Only" } });
    let resync = null;
    const { client } = recorded({
      url: server.url,
      token: user.token,
      lastEventId: 1_000_000,
      onResync: (data) => (resync = data),
    });
    client.start();
    await until(() => resync, 5000, "resync_required");
    assert.equal(resync.latest_id, 1);
    assert.equal(client.lastEventId, 1);
  });

  test("types: only the asked types, connection messages always", async () => {
    const user = await server.newUser();
    const { client, log } = recorded({ url: server.url, token: user.token, types: ["system_notification"] });
    client.start();
    await live(client);
    await server.api("/sellers", { method: "POST", token: user.token, body: { name: "Filtered out" } });
    await server.api("/notifications", { method: "POST", token: user.token, body: { title: "Kept" } });
    await until(() => log.events.length === 1, 5000, "the notification");
    assert.deepEqual(
      log.messages.map((message) => message.type),
      ["connected", "system_notification"],
    );
  });

  test("pings keep a quiet connection live; the server's pongs answer them", async () => {
    const user = await server.newUser();
    const { client, log } = recorded({ url: server.url, token: user.token, heartbeatMs: 250 });
    client.start();
    await live(client);
    await sleep(1500); // six pings, three windows of two intervals: replaced if they went unanswered
    assert.equal(client.state, "live");
    assert.deepEqual(
      log.states.map(([state]) => state),
      ["connecting", "live"],
    );
  });

  test("a refused token stops the client after one attempt and calls onError", async () => {
    const { client, log } = recorded({ url: server.url, token: "not-a-token" });
    client.start();
    await until(() => log.errors.length === 1, 5000, "onError");
    await sleep(300);
    assert.equal(log.errors[0].code, "unauthorized");
    assert.equal(log.errors.length, 1);
    assert.equal(client.state, "offline");
    assert.equal(log.states.filter(([state]) => state === "connecting").length, 1);
    assert.equal(log.states.at(-1)[1].gaveUp, true);
  });

  test("bad parameters stop the client with bad_request", async () => {
    const user = await server.newUser();
    const { client, log } = recorded({ url: server.url, token: user.token, lastEventId: -5 });
    client.start();
    await until(() => log.errors.length === 1, 5000, "onError");
    assert.equal(log.errors[0].code, "bad_request");
    assert.equal(client.state, "offline");
  });

  test("token refresh: a token revoked mid-stream is replaced once through getToken", async () => {
    const user = await server.newUser();
    const asked = [];
    let current = user.token;
    const { client, log } = recorded({
      url: server.url,
      getToken: async ({ refresh }) => {
        asked.push(refresh);
        if (refresh) {
          current = await server.issueToken(user.username, user.password);
        }
        return current;
      },
    });
    client.start();
    await live(client);
    await server.api("/sellers", { method: "POST", token: user.token, body: { name: "Before" } });
    await until(() => log.events.length === 1, 5000, "the first event");

    const revoked = current;
    await server.api("/auth/token", { method: "DELETE", token: revoked, expect: 204 });
    // The server ends the stream (close 4401) within token_check_s; the client asks for a fresh token.
    await until(() => asked.includes(true), 5000, "getToken({refresh: true})");
    await until(() => client.state === "live" && current !== revoked, 5000, "live on the fresh token");
    await server.api("/sellers", { method: "POST", token: current, body: { name: "After" } });
    await until(() => log.events.length === 2, 5000, "the event after the refresh");
    assert.deepEqual(asked, [false, true]);
    assert.deepEqual(
      log.events.map((event) => event.data.name),
      ["Before", "After"],
    );
    assert.deepEqual(log.errors, []);
    assert.ok(log.states.some(([, info]) => info.reason === "token_refresh"), "token_refresh state");
  });

  test("token refresh that gets a refused token again stops with onError", async () => {
    const user = await server.newUser();
    const stale = user.token;
    await server.api("/auth/token", { method: "DELETE", token: stale, expect: 204 });
    const asked = [];
    const { client, log } = recorded({
      url: server.url,
      getToken: ({ refresh }) => {
        asked.push(refresh);
        return stale; // an app whose refresh is broken
      },
    });
    client.start();
    await until(() => log.errors.length === 1, 5000, "onError");
    await sleep(200);
    assert.deepEqual(asked, [false, true]);
    assert.equal(log.errors[0].code, "unauthorized");
    assert.equal(client.state, "offline");
  });
});

describe("a server restart", () => {
  const server = new Server();
  before(() => server.start());
  after(() => server.close());

  test("goes offline with a readable reason, comes back by itself and loses nothing", async () => {
    const user = await server.newUser();
    const { client, log } = recorded({
      url: server.url,
      token: user.token,
      reconnect: { floorMs: 100, ceilingMs: 400 },
    });
    client.start();
    await live(client);
    await server.api("/sellers", { method: "POST", token: user.token, body: { name: "Before" } });
    await until(() => log.events.length === 1, 5000, "the first event");

    await server.stop(); // SIGTERM: the server closes the WebSocket with 1012
    await until(() => client.state !== "live", 5000, "offline");
    const down = log.states.find(([state]) => state === "offline")[1];
    assert.equal(down.reason, "server_restart");
    assert.equal(down.closeCode, 1012);
    assert.equal(reasonText(down.reason), "the server is restarting");
    assert.ok(down.retryInMs >= 100 && down.retryInMs <= 400, `retry in ${down.retryInMs} ms`);

    // Attempts while it is down are refused at once (not after connectTimeoutMs, 15 s).
    await until(
      () => log.states.some(([, info]) => info.reason === "connect_failed"),
      3000,
      "a refused attempt",
    );

    await server.start();
    // Changes right after the restart, whether or not the client is back yet: each arrives once.
    for (const name of ["After 1", "After 2", "After 3"]) {
      await server.api("/sellers", { method: "POST", token: user.token, body: { name } });
    }
    await until(() => log.events.length === 4, 10000, "the three changes after the restart");
    assert.equal(client.state, "live");
    assert.deepEqual(
      log.events.map((event) => event.data.name),
      ["Before", "After 1", "After 2", "After 3"],
    );
    assertGapless(log.events, 0);
    assert.equal(log.messages.filter((message) => message.type === "connected").length, 2);
  });
});

describe("failing fast", () => {
  test("a refused connection is retried at once, not after connectTimeoutMs", async () => {
    const port = await freePort(); // nothing listens there
    const started = Date.now();
    const { client, log } = recorded({
      url: `http://127.0.0.1:${port}`,
      token: "t",
      reconnect: { floorMs: 30, ceilingMs: 30, maxAttempts: 3 },
    });
    client.start();
    await until(() => log.states.some(([, info]) => info.gaveUp), 5000, "giving up");
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 3000, `gave up after ${elapsed} ms (connectTimeoutMs is 15000)`);
    assert.equal(log.states.filter(([state]) => state === "connecting").length, 4);
    assert.ok(log.states.filter(([state]) => state === "offline").every(([, info]) => info.reason === "connect_failed"));
    assert.deepEqual(log.errors, []); // not a refusal: wake() or reconnect() tries again
  });

  test("a non-101 answer (a proxy's 502) is retried at once", async () => {
    let upgrades = 0;
    const proxy = createServer((request, response) => response.writeHead(404).end());
    proxy.on("upgrade", (request, socket) => {
      upgrades += 1;
      socket.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    });
    await new Promise((done) => proxy.listen(0, "127.0.0.1", done));
    try {
      const started = Date.now();
      const { client, log } = recorded({
        url: `http://127.0.0.1:${proxy.address().port}`,
        token: "t",
        reconnect: { floorMs: 30, ceilingMs: 30, maxAttempts: 2 },
      });
      client.start();
      await until(() => log.states.some(([, info]) => info.gaveUp), 5000, "giving up");
      assert.ok(Date.now() - started < 3000);
      assert.equal(upgrades, 3);
    } finally {
      proxy.closeAllConnections();
      await new Promise((done) => proxy.close(done));
    }
  });

  test("no url outside a browser is a setup mistake: onError once, no retries", async () => {
    const { client, log } = recorded({ token: "t" });
    client.start();
    await until(() => log.errors.length === 1, 1000, "onError");
    await sleep(200);
    assert.equal(log.errors[0].code, "bad_config");
    assert.match(log.errors[0].message, /url/);
    assert.equal(log.errors.length, 1);
    assert.equal(client.state, "offline");
    assert.equal(log.states.filter(([state]) => state === "connecting").length, 0);
    assert.equal(log.states.at(-1)[1].gaveUp, true);
  });

  test("transport sse without EventSource is a setup mistake", async () => {
    const { client, log } = recorded({ url: "http://127.0.0.1:9", token: "t", transport: "sse" });
    client.start();
    await until(() => log.errors.length === 1, 1000, "onError");
    assert.equal(log.errors[0].code, "bad_config");
    assert.match(log.errors[0].message, /EventSource/);
    client.wake(); // refused for good: waking does not retry
    await sleep(100);
    assert.equal(log.errors.length, 1);
  });

  test("a setup mistake without onError is reported, not silent", async () => {
    const reported = [];
    const originalError = console.error;
    console.error = (error) => reported.push(error);
    try {
      const client = new DropsyncClient({ url: "ftp://example.com", token: "t" });
      made.push(client);
      client.start();
      await within(1000, until(() => reported.length === 1, 1000, "a report"));
    } finally {
      console.error = originalError;
    }
    assert.match(String(reported[0]), /http/);
  });
});
