/**
 * dropsync real-time client: one dependency-free ES module for browsers and React Native.
 *
 *   import { DropsyncClient } from "/static/dropsync.js";
 *   const client = new DropsyncClient({ url: "https://shop.example", token });
 *   client.on("order_created", (event) => console.log(event.data));
 *   client.onState((state) => console.log(state)); // "connecting" | "live" | "offline"
 *   client.start();
 *
 * Contract:
 * - Every recorded event reaches the listeners once, in id order: the client keeps the last id it
 *   delivered, resumes with `?last_event_id=` after any drop, and ignores an id it has already seen.
 * - Reconnects with exponential back-off and full jitter between `floorMs` and `ceilingMs`; forever
 *   by default, or `maxAttempts` tries in a row (`OLD_APP_RECONNECT` is the old app's 5 x 3 s).
 *   It reconnects at once on the browser's `online` event and when the page becomes visible again.
 * - WebSocket: a `{"type":"ping"}` every heartbeat interval; when nothing (pong or event) arrives
 *   within two intervals the connection is taken for dead (half-open) and replaced.
 * - `resync_required` (the resume point is older than what the server keeps): `lastEventId` jumps to
 *   the server's `latest_id` and `onResync(data)` is called, so the app reloads its lists.
 * - Tabs of one page share one connection (`share`): the tab holding a Web Lock is the leader and
 *   relays what it receives to the others over a BroadcastChannel; when it closes, another tab takes
 *   over and resumes from the last id it saw. Without Web Locks (plain http on a host other than
 *   localhost, React Native) every client keeps its own connection.
 * - A bad token (WebSocket close 4401, or a 401 for EventSource) or bad parameters (4400) stop the
 *   client and call `onError`; it does not retry what cannot succeed. With `getToken`, a refused
 *   token is first replaced: `getToken({ refresh: true })` is asked once for a fresh one.
 * - A setup mistake (no `url` outside a browser, a transport this runtime lacks) stops the client at
 *   once with `onError({ code: "bad_config" })` instead of retrying what cannot work.
 * - Works without a DOM (React Native, Node >= 20 with `--experimental-websocket` or a `WebSocket`
 *   passed in): only `WebSocket`, timers and, for SSE, `EventSource` and `fetch` are used.
 */

/** Connection messages: not recorded, no `id`; they always come, whatever `types` asks for. */
export const CONNECTION_TYPES = Object.freeze(["connected", "error", "resync_required"]);

/** The SSE event name of an `error` envelope (not "error", EventSource's own failure event). */
export const SSE_ERROR_EVENT = "stream_error";

/** The recorded event types (docs/realtime.md describes their data). */
export const EVENT_TYPES = Object.freeze([
  "product_added",
  "product_updated",
  "product_deleted",
  "product_stock_changed",
  "product_price_changed",
  "product_synced",
  "seller_added",
  "seller_updated",
  "seller_deleted",
  "seller_products_fetched",
  "order_created",
  "order_updated",
  "order_status_changed",
  "order_processed",
  "stock_sync_started",
  "stock_sync_completed",
  "stock_low",
  "stock_out",
  "settings_updated",
  "system_notification",
]);

/** Default reconnection: unlimited tries, 1 s floor, 30 s ceiling, doubling, full jitter. */
export const DEFAULT_RECONNECT = Object.freeze({
  floorMs: 1000,
  ceilingMs: 30000,
  factor: 2,
  jitter: true,
  maxAttempts: Infinity,
});

/** The old app's behaviour: 5 tries, 3 s apart, then give up (until `online`, a visible page or `reconnect()`). */
export const OLD_APP_RECONNECT = Object.freeze({ floorMs: 3000, ceilingMs: 3000, maxAttempts: 5 });

const CLOSE_BAD_TOKEN = 4401;
const CLOSE_BAD_REQUEST = 4400;
/** WebSocket close codes the server uses, as the reasons the client reports. */
const CLOSE_REASONS = Object.freeze({ 1006: "connection_lost", 1011: "connection_lost", 1012: "server_restart", 1013: "slow_consumer" });
/** Server `error` codes that announce the end of the stream (resume and lose nothing). */
const STREAM_ENDINGS = new Set(["server_restart", "slow_consumer", "reconnect"]);
/** How long an open WebSocket may stay silent after an `error` before it is taken for closed: Node's
 *  WebSocket fires `error` and sometimes never `close`. */
const CLOSE_AFTER_ERROR_MS = 1000;

/** Readable text for the reasons in `onState`'s info and the codes given to `onError`. */
export const REASONS = Object.freeze({
  server_restart: "the server is restarting",
  slow_consumer: "the connection fell too far behind",
  reconnect: "the server asked to reconnect",
  stream_ended: "the event stream ended",
  connection_lost: "the connection was lost",
  closed: "the connection was closed",
  connect_failed: "the server cannot be reached",
  connect_timeout: "the server did not answer in time",
  heartbeat_timeout: "the connection stopped answering",
  send_failed: "the connection could not send",
  browser_offline: "this device is offline",
  open_failed: "the connection could not be opened",
  token: "no access token could be had",
  token_refresh: "getting a fresh access token",
  unauthorized: "the access token was refused: sign in again",
  bad_request: "the server refused the connection's parameters",
  bad_config: "the client is set up wrongly",
  stopped: "stopped",
});

/** A reason or error code as a short sentence fragment ("the server is restarting"). */
export function reasonText(code) {
  if (!code) {
    return "";
  }
  return REASONS[code] || String(code).replace(/_/g, " ");
}

/**
 * The wait before reconnection attempt `attempt` (0 for the first after a drop), in milliseconds.
 *
 * With jitter ("full jitter"), uniform between the floor and min(ceiling, floor * factor^(attempt+1)),
 * so that clients dropped together by a restart do not come back together; without it, the
 * exponential value min(ceiling, floor * factor^attempt). floor == ceiling gives a fixed wait.
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const { floorMs, ceilingMs, factor, jitter } = { ...DEFAULT_RECONNECT, ...options };
  const floor = Math.max(1, Math.min(floorMs, ceilingMs));
  if (!jitter) {
    return Math.min(ceilingMs, floor * Math.pow(factor, attempt));
  }
  const cap = Math.max(floor, Math.min(ceilingMs, floor * Math.pow(factor, attempt + 1)));
  return floor + random() * (cap - floor);
}

function hasWebLocks() {
  return typeof navigator !== "undefined" && !!navigator.locks && typeof navigator.locks.request === "function";
}

function reportListenerError(error) {
  // A broken listener must not break delivery to the others, nor hide its error.
  if (typeof reportError === "function") {
    reportError(error);
  } else if (typeof console !== "undefined") {
    console.error(error);
  }
}

/** A short, stable, non-reversible tag for a string (to keep tokens out of lock and channel names). */
function fingerprint(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(36);
}

function defaultBaseUrl() {
  return typeof location !== "undefined" && location.origin && location.origin !== "null" ? location.origin : "";
}

export class DropsyncClient {
  /**
   * @param {object} options
   * @param {string} [options.url] the server's base URL (default: this page's origin)
   * @param {string} [options.token] the access token; or `getToken` (sync or async), asked before each attempt
   * @param {"auto"|"sse"|"ws"} [options.transport] auto: EventSource where tabs can share it, else WebSocket
   * @param {string[]} [options.types] receive only these types (connection messages always come)
   * @param {number|null} [options.lastEventId] resume after this id; null (default): from now
   * @param {object} [options.reconnect] floorMs, ceilingMs, factor, jitter, maxAttempts (see DEFAULT_RECONNECT)
   * @param {number} [options.heartbeatMs] WebSocket ping interval (default: the server's heartbeat_s)
   * @param {number} [options.connectTimeoutMs] an attempt without `connected` by then has failed (15 s)
   * @param {boolean} [options.share] share one connection between tabs (default: yes, unless lastEventId is given)
   * @param {string} [options.shareKey] tabs with the same key share (default: URL + token fingerprint)
   * @param {function} [options.onResync] called with resync_required's data; reload your lists there
   * @param {function} [options.onError] called with {code, message} when the client stops for good
   * @param {function} [options.WebSocket] a WebSocket implementation (default: the global one)
   * @param {function} [options.EventSource] an EventSource implementation (default: the global one)
   */
  constructor(options = {}) {
    this.options = options;
    this.url = String(options.url || defaultBaseUrl()).replace(/\/+$/, "");
    this.reconnectOptions = { ...DEFAULT_RECONNECT, ...(options.reconnect || {}) };
    this.types = options.types ? Array.from(options.types) : null;
    this.lastEventId = options.lastEventId === undefined ? null : options.lastEventId;
    /** "connecting" | "live" | "offline" */
    this.state = "offline";
    /** "solo" (own connection) | "leader" (connection shared with other tabs) | "follower" (uses the leader's) */
    this.role = "solo";
    this.transport = null;
    this.running = false;
    this._WebSocket = options.WebSocket || (typeof WebSocket !== "undefined" ? WebSocket : null);
    this._EventSource = options.EventSource || (typeof EventSource !== "undefined" ? EventSource : null);
    this._listeners = new Map();
    this._stateListeners = new Set();
    this._generation = 0;
    this._attempt = 0;
    this._connection = null;
    this._retryTimer = null;
    this._hiddenAt = null;
    this._channel = null;
    this._lockAbort = null;
    this._releaseLock = null;
    this._environment = null;
    this._failed = null;
    this._serverHeartbeatMs = null;
    this._refreshing = false;
  }

  /** Call `fn(event)` for each message of `type` ("*": every message). Returns a function that removes it. */
  on(type, fn) {
    if (!this._listeners.has(type)) {
      this._listeners.set(type, new Set());
    }
    this._listeners.get(type).add(fn);
    return () => this.off(type, fn);
  }

  /** Remove `fn` from `type`; without `fn`, every listener of `type`. */
  off(type, fn) {
    const set = this._listeners.get(type);
    if (!set) {
      return;
    }
    if (fn === undefined) {
      set.clear();
    } else {
      set.delete(fn);
    }
  }

  /** Call `fn(state, info)` on each change of state; info has `attempt` and `retryInMs` while offline. */
  onState(fn) {
    this._stateListeners.add(fn);
    return () => this._stateListeners.delete(fn);
  }

  /** Connect (or join the tab that is connected). Returns the client. */
  start() {
    if (this.running) {
      return this;
    }
    this.running = true;
    this._attempt = 0;
    this._failed = null;
    this._watchEnvironment();
    // A follower starts where the leader is; a client that asks for its own resume point
    // (lastEventId) needs its own replay, so it does not share unless told to.
    const share = this.options.share === undefined ? this.options.lastEventId == null : this.options.share;
    const canShare = typeof BroadcastChannel !== "undefined" && hasWebLocks();
    if (share && canShare) {
      this._startShared();
    } else {
      this.role = "solo";
      this._connect();
    }
    return this;
  }

  /** Close the connection (handing it to another tab when shared) and stop reconnecting. */
  stop() {
    if (!this.running) {
      return;
    }
    this.running = false;
    this._dropConnection();
    this._unwatchEnvironment();
    if (this._lockAbort) {
      this._lockAbort.abort();
      this._lockAbort = null;
    }
    if (this._releaseLock) {
      this._releaseLock();
      this._releaseLock = null;
    }
    if (this._channel) {
      this._channel.close();
      this._channel = null;
    }
    this.role = "solo";
    this._setState("offline", { reason: "stopped" });
  }

  /** Reconnect now, forgetting the back-off (also after the client gave up). */
  reconnect() {
    if (!this.running) {
      return;
    }
    if (this.role === "follower") {
      this._post({ kind: "reconnect" });
      return;
    }
    this._attempt = 0;
    this._failed = null;
    this._dropConnection();
    this._connect();
  }

  /**
   * The app came back (network up, page visible, React Native's AppState "active"): reconnect at
   * once unless live; after a long absence, reconnect anyway, as the connection may be half-open.
   */
  wake(absentMs = 0) {
    if (!this.running) {
      return;
    }
    if (this.role === "follower") {
      this._post({ kind: "wake", absentMs });
      return;
    }
    if (this._failed) {
      return; // refused for good (bad token or parameters): only reconnect() tries again
    }
    const stale = this.state === "live" && absentMs > 2 * this._heartbeatMs();
    if (this.state === "offline" || stale) {
      this.reconnect(); // "connecting": an attempt is under way, bounded by connectTimeoutMs
    }
  }

  // ---- one connection ------------------------------------------------------------------------

  _chooseTransport() {
    const wanted = this.options.transport || "auto";
    if (wanted === "sse" || wanted === "ws") {
      return wanted;
    }
    // EventSource counts against the browser's six HTTP/1.1 connections per origin, so it is
    // used only where tabs can share it; WebSocket does not count against that limit.
    const shared = this.role === "leader";
    return this._EventSource && (shared || !this._WebSocket) ? "sse" : "ws";
  }

  async _token() {
    if (typeof this.options.getToken === "function") {
      return await this.options.getToken({ refresh: this._refreshing });
    }
    return this.options.token || "";
  }

  /** Why `transport` cannot work here (a setup mistake: retrying will not help), or null. */
  _configProblem(transport) {
    if (!this.url) {
      return "no server URL: pass `url` (there is no page location to default to outside a browser)";
    }
    if (!/^https?:\/\//i.test(this.url)) {
      return `url must start with http:// or https:// (got ${JSON.stringify(this.url)})`;
    }
    if (transport === "sse" && !this._EventSource) {
      return "transport 'sse' needs EventSource, which this runtime lacks (React Native, Node): use transport 'ws'";
    }
    if (transport === "ws" && !this._WebSocket) {
      return "no WebSocket here: pass an implementation as the `WebSocket` option (Node 20: --experimental-websocket)";
    }
    return null;
  }

  _streamUrl(transport, token) {
    const query = [];
    if (token) {
      query.push("access_token=" + encodeURIComponent(token));
    }
    if (this.lastEventId !== null && this.lastEventId !== undefined) {
      query.push("last_event_id=" + encodeURIComponent(String(this.lastEventId)));
    }
    if (this.types) {
      query.push("types=" + encodeURIComponent(this.types.join(",")));
    }
    let base = this.url + (transport === "ws" ? "/ws" : "/events");
    if (transport === "ws") {
      base = base.replace(/^http(s?):/i, "ws$1:");
    }
    return base + (query.length ? "?" + query.join("&") : "");
  }

  async _connect() {
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    const generation = ++this._generation;
    const transport = this._chooseTransport();
    const problem = this._configProblem(transport);
    if (problem) {
      this._fail({ code: "bad_config", message: problem });
      return;
    }
    const attempt = { generation, transport, token: "", live: false, opened: false, socket: null, timers: [], watchdog: null };
    this._connection = attempt;
    this.transport = transport;
    this._setState("connecting", { attempt: this._attempt });
    try {
      attempt.token = await this._token();
    } catch (error) {
      this._down(generation, { reason: "token", error });
      return;
    }
    if (generation !== this._generation || !this.running) {
      return;
    }
    const url = this._streamUrl(transport, attempt.token);
    attempt.timers.push(
      setTimeout(
        () => this._down(generation, { reason: "connect_timeout" }),
        this.options.connectTimeoutMs || 15000,
      ),
    );
    try {
      attempt.socket = transport === "ws" ? this._openWebSocket(url, attempt) : this._openEventSource(url, attempt);
    } catch (error) {
      this._down(generation, { reason: "open_failed", error });
    }
  }

  _openEventSource(url, attempt) {
    if (!this._EventSource) {
      throw new Error("EventSource is not available here: use transport 'ws'");
    }
    const source = new this._EventSource(url);
    const names = (this.types || EVENT_TYPES.concat(this.options.extraTypes || [])).concat(CONNECTION_TYPES);
    // An `error` envelope comes as `stream_error`; servers before it sent it as `error`, which is
    // also EventSource's own failure event (that one carries no data).
    for (const name of new Set(names.concat([SSE_ERROR_EVENT]))) {
      source.addEventListener(name, (event) => {
        if (typeof event.data === "string") {
          this._receiveText(attempt.generation, event.data);
        }
      });
    }
    source.onerror = (event) => {
      if (typeof event.data === "string") {
        return; // the server's `error` event, handled above; the stream's end follows
      }
      // Closed, or EventSource is retrying on its own: take over, with our back-off and last id.
      const reason = attempt.farewell || (attempt.live ? "stream_ended" : "connect_failed");
      this._down(attempt.generation, { reason });
    };
    return source;
  }

  _openWebSocket(url, attempt) {
    if (!this._WebSocket) {
      throw new Error("WebSocket is not available here");
    }
    const socket = new this._WebSocket(url);
    socket.onopen = () => {
      attempt.opened = true;
    };
    socket.onmessage = (event) => {
      if (typeof event.data === "string") {
        this._receiveText(attempt.generation, event.data);
      }
    };
    socket.onclose = (event) => {
      if (event.code === CLOSE_BAD_TOKEN) {
        this._down(attempt.generation, { fatal: true, code: "unauthorized", message: REASONS.unauthorized });
      } else if (event.code === CLOSE_BAD_REQUEST) {
        this._down(attempt.generation, { fatal: true, code: "bad_request", message: event.reason || REASONS.bad_request });
      } else {
        const reason = attempt.farewell || CLOSE_REASONS[event.code] || "closed";
        this._down(attempt.generation, { reason, closeCode: event.code });
      }
    };
    socket.onerror = () => {
      // Browsers follow an error with `close` (and its code); Node's WebSocket does not after a
      // refused connection or a non-101 answer, and stays CONNECTING. Not opened: the attempt has
      // failed now. Opened: give `close` a moment to bring its code.
      if (!attempt.opened) {
        this._down(attempt.generation, { reason: "connect_failed" });
      } else {
        attempt.timers.push(setTimeout(() => this._down(attempt.generation, { reason: "connection_lost" }), CLOSE_AFTER_ERROR_MS));
      }
    };
    return socket;
  }

  _receiveText(generation, text) {
    const attempt = this._connection;
    if (!attempt || attempt.generation !== generation) {
      return;
    }
    attempt.heardAt = Date.now();
    let message;
    try {
      message = JSON.parse(text);
    } catch (error) {
      return; // not ours to deliver; the server sends JSON only
    }
    if (!message || typeof message !== "object") {
      return;
    }
    if (message.type === "pong") {
      return;
    }
    if (message.type === "connected") {
      this._onConnected(attempt, message);
    }
    this._deliver(message);
    if (message.type === "error" && message.data && typeof message.data.code === "string") {
      const code = message.data.code;
      if (code === "unauthorized" || (code === "bad_request" && attempt.transport === "sse")) {
        // The stream ends for good with this farewell: do not wait for the end to say so.
        this._down(generation, { fatal: true, code, message: message.data.message || REASONS[code] });
      } else if (STREAM_ENDINGS.has(code)) {
        attempt.farewell = code; // the reason of the end that follows
      }
    }
  }

  _onConnected(attempt, message) {
    for (const timer of attempt.timers) {
      clearTimeout(timer);
    }
    attempt.timers = [];
    attempt.live = true;
    this._attempt = 0;
    this._refreshing = false;
    this._serverHeartbeatMs = message.data && message.data.heartbeat_s ? message.data.heartbeat_s * 1000 : null;
    if (attempt.transport === "ws") {
      this._startHeartbeat(attempt);
    }
    this._setState("live", { transport: attempt.transport });
  }

  _heartbeatMs() {
    return this.options.heartbeatMs || this._serverHeartbeatMs || 15000;
  }

  /** Ping every interval; nothing heard for two intervals means the connection is dead. */
  _startHeartbeat(attempt) {
    const interval = this._heartbeatMs();
    attempt.heardAt = Date.now();
    const ping = () => {
      try {
        attempt.socket.send('{"type":"ping"}');
      } catch (error) {
        this._down(attempt.generation, { reason: "send_failed", error });
      }
    };
    attempt.timers.push(setInterval(ping, interval));
    // One timer, re-armed for the remaining time, rather than a new timer per message.
    const watch = () => {
      const silentFor = Date.now() - attempt.heardAt;
      if (silentFor >= 2 * interval) {
        this._down(attempt.generation, { reason: "heartbeat_timeout" });
      } else {
        attempt.watchdog = setTimeout(watch, 2 * interval - silentFor);
      }
    };
    attempt.watchdog = setTimeout(watch, 2 * interval);
  }

  /** Hand one message to the listeners (and, when leading, to the other tabs), at most once per id. */
  _deliver(message, fromLeader = false) {
    if (typeof message.id === "number") {
      if (this.lastEventId !== null && message.id <= this.lastEventId) {
        return; // seen already (a replay overlap, or a relay of what we had)
      }
      this.lastEventId = message.id;
    } else if (message.type === "resync_required" && message.data) {
      this.lastEventId = message.data.latest_id;
    } else if (message.type === "connected" && this.lastEventId === null && message.data) {
      this.lastEventId = message.data.last_event_id; // from now on, resume from here
    }
    if (this.role === "leader" && !fromLeader) {
      this._post({ kind: "message", message, lastEventId: this.lastEventId });
    }
    for (const key of [message.type, "*"]) {
      const set = this._listeners.get(key);
      if (set) {
        for (const fn of Array.from(set)) {
          try {
            fn(message);
          } catch (error) {
            reportListenerError(error);
          }
        }
      }
    }
    if (message.type === "resync_required" && typeof this.options.onResync === "function") {
      try {
        this.options.onResync(message.data);
      } catch (error) {
        reportListenerError(error);
      }
    }
  }

  /** Close the current connection without waiting for the peer (it may be gone or half-open). */
  _dropConnection() {
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._generation += 1;
    const attempt = this._connection;
    this._connection = null;
    if (!attempt) {
      return;
    }
    for (const timer of attempt.timers) {
      clearTimeout(timer);
      clearInterval(timer);
    }
    clearTimeout(attempt.watchdog);
    const socket = attempt.socket;
    if (socket) {
      socket.onmessage = null;
      socket.onclose = null;
      socket.onerror = null;
      try {
        socket.close();
      } catch (error) {
        // closing a socket that never opened can throw in some implementations; it is gone either way
      }
    }
  }

  _down(generation, info) {
    const attempt = this._connection;
    if (!this.running || generation !== this._generation || !attempt || attempt.generation !== generation) {
      return; // a late callback of a connection already replaced
    }
    this._dropConnection();
    if (info.fatal && info.code === "unauthorized") {
      this._refused(info);
      return;
    }
    if (info.fatal) {
      this._fail(info);
      return;
    }
    if (attempt.transport === "sse" && !attempt.live && typeof fetch === "function") {
      // EventSource hides the status code: ask once whether the server refuses this stream.
      const retryGeneration = this._generation;
      this._refusal(this._streamUrl("sse", attempt.token)).then((refusal) => {
        if (!this.running || retryGeneration !== this._generation) {
          return;
        }
        if (refusal && refusal.code === "unauthorized") {
          this._refused(refusal);
        } else if (refusal) {
          this._fail(refusal);
        } else {
          this._scheduleRetry(info);
        }
      });
      return;
    }
    this._scheduleRetry(info);
  }

  /** The token was refused: with `getToken`, try once at once with a fresh one; else stop. */
  _refused(info) {
    if (typeof this.options.getToken === "function" && !this._refreshing) {
      this._refreshing = true; // until a connection is live again
      this._setState("offline", { reason: "token_refresh", attempt: this._attempt, retryInMs: 0 });
      this._retryTimer = setTimeout(() => this._connect(), 0);
      return;
    }
    this._fail(info);
  }

  /** A refusal that retrying cannot fix ({code, message}: 401 bad token, 400 bad parameters), or null. */
  async _refusal(url) {
    const controller = typeof AbortController === "function" ? new AbortController() : null;
    try {
      const response = await fetch(url, { headers: { Accept: "text/event-stream" }, signal: controller && controller.signal });
      if (response.status === 401) {
        return { code: "unauthorized", message: REASONS.unauthorized };
      }
      if (response.status === 400) {
        const body = await response.json().catch(() => ({}));
        return { code: "bad_request", message: body.detail || REASONS.bad_request };
      }
      return null; // a stream (or a server error): retrying may help
    } catch (error) {
      return null; // unreachable: a network problem, not a refusal
    } finally {
      if (controller) {
        controller.abort(); // do not keep the probe's stream open
      }
    }
  }

  _scheduleRetry(info) {
    const why = info.closeCode === undefined ? { reason: info.reason } : { reason: info.reason, closeCode: info.closeCode };
    if (this._attempt >= this.reconnectOptions.maxAttempts) {
      this._setState("offline", { ...why, gaveUp: true, attempt: this._attempt });
      return;
    }
    const delay = backoffDelay(this._attempt, this.reconnectOptions);
    this._attempt += 1;
    this._setState("offline", { ...why, attempt: this._attempt, retryInMs: Math.round(delay) });
    this._retryTimer = setTimeout(() => this._connect(), delay);
  }

  _fail(info) {
    this._failed = info;
    this._refreshing = false;
    this._setState("offline", { reason: info.code, gaveUp: true, message: info.message });
    if (typeof this.options.onError === "function") {
      try {
        this.options.onError({ code: info.code, message: info.message });
      } catch (error) {
        reportListenerError(error);
      }
    } else if (info.code === "bad_config") {
      reportListenerError(new Error("dropsync: " + info.message)); // a setup mistake must not be silent
    }
  }

  _setState(state, info = {}) {
    const changed = state !== this.state;
    this.state = state;
    if (this.role === "leader") {
      this._post({ kind: "state", state, info, lastEventId: this.lastEventId });
    }
    if (!changed && state !== "offline") {
      return; // offline repeats carry a new retry time; the others are news only when they change
    }
    for (const fn of Array.from(this._stateListeners)) {
      try {
        fn(state, info);
      } catch (error) {
        reportListenerError(error);
      }
    }
  }

  // ---- tabs sharing one connection -----------------------------------------------------------

  _startShared() {
    const key = this.options.shareKey || this.url + "|" + fingerprint(this.options.token || "");
    const name = "dropsync:" + key + "|" + (this.options.transport || "auto") + "|" + (this.types || []).join(",");
    this.role = "follower";
    this._channel = new BroadcastChannel(name);
    this._channel.onmessage = (event) => this._onTabMessage(event.data);
    this._setState("connecting", { role: "follower" });
    this._post({ kind: "hello" });
    this._lockAbort = typeof AbortController !== "undefined" ? new AbortController() : null;
    const lockOptions = this._lockAbort ? { signal: this._lockAbort.signal } : {};
    navigator.locks
      .request(name, lockOptions, () => {
        if (!this.running) {
          return undefined;
        }
        // Held until stop() resolves it, or until this page goes away.
        return new Promise((resolve) => {
          this._releaseLock = resolve;
          this._lead();
        });
      })
      .catch(() => {}); // AbortError: stopped while waiting for the lock
  }

  _lead() {
    this._lockAbort = null;
    this.role = "leader";
    this._attempt = 0;
    this._connect();
  }

  _post(message) {
    if (this._channel) {
      try {
        this._channel.postMessage(message);
      } catch (error) {
        reportListenerError(error);
      }
    }
  }

  _onTabMessage(message) {
    if (!message || !this.running) {
      return;
    }
    if (this.role === "leader") {
      if (message.kind === "hello") {
        this._post({ kind: "state", state: this.state, info: {}, lastEventId: this.lastEventId });
      } else if (message.kind === "reconnect") {
        this.reconnect();
      } else if (message.kind === "wake") {
        this.wake(message.absentMs || 0);
      }
      return;
    }
    if (this.role !== "follower") {
      return;
    }
    if (message.kind === "message") {
      this._deliver(message.message, true);
    } else if (message.kind === "state") {
      const theirs = message.lastEventId;
      if (typeof theirs === "number" && (this.lastEventId === null || theirs > this.lastEventId)) {
        this.lastEventId = theirs; // where we resume if we become the leader
      }
      this._setState(message.state, { ...(message.info || {}), role: "follower" });
    }
  }

  // ---- the page around the client ------------------------------------------------------------

  _watchEnvironment() {
    if (typeof window === "undefined" || typeof window.addEventListener !== "function") {
      return; // React Native: call wake() from AppState "active" and from NetInfo
    }
    const onOnline = () => this.wake();
    const onOffline = () => {
      if (this.role !== "follower" && this.state !== "offline") {
        this._dropConnection();
        this._scheduleRetry({ reason: "browser_offline" });
      }
    };
    const onVisibility = () => {
      if (document.visibilityState === "hidden") {
        this._hiddenAt = Date.now();
      } else if (document.visibilityState === "visible") {
        const absent = this._hiddenAt === null ? 0 : Date.now() - this._hiddenAt;
        this._hiddenAt = null;
        this.wake(absent);
      }
    };
    window.addEventListener("online", onOnline);
    window.addEventListener("offline", onOffline);
    if (typeof document !== "undefined") {
      document.addEventListener("visibilitychange", onVisibility);
    }
    this._environment = () => {
      window.removeEventListener("online", onOnline);
      window.removeEventListener("offline", onOffline);
      if (typeof document !== "undefined") {
        document.removeEventListener("visibilitychange", onVisibility);
      }
    };
  }

  _unwatchEnvironment() {
    if (this._environment) {
      this._environment();
      this._environment = null;
    }
  }
}
