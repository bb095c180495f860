/**
 * The dropsync dashboard: sign in, live tables of products, orders and sellers, a connection badge,
 * toasts and an event log. Plain ES module, no build step; the stream comes from ./dropsync.js.
 *
 * Consistency: the lists are loaded once the stream is live (its `connected` message fixes where the
 * stream starts), and the events that arrive while they load are applied afterwards, in order. An
 * event only ever sets a row to the state it describes, and a row never goes back to an older
 * `version`, so applying an event the loaded list already reflects changes nothing.
 *
 * Options, for testing and by hand: `?transport=sse|ws`, or `window.DROPSYNC_DASHBOARD = {transport,
 * reconnect, heartbeatMs, share}` set before this module runs.
 */

import { DropsyncClient } from "/static/dropsync.js";

const TOKEN_KEY = "dropsync.token";
const LIVE_BADGE_MS = 3000;
const MAX_ROWS = 100;
const LOG_SIZE = 100;
const TOAST_MS = 8000;
const MAX_TOASTS = 5;

const query = new URLSearchParams(location.search);
const config = { transport: query.get("transport") || "auto", ...(window.DROPSYNC_DASHBOARD || {}) };

const $ = (id) => document.getElementById(id);

// ---- the REST API ------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail, retryAfter) {
    super(detail);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

async function api(path, { method = "GET", body, token } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  if (token) {
    headers.Authorization = "Bearer " + token;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, "Cannot reach the server.");
  }
  if (response.status === 204) {
    return null;
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : response.statusText;
    throw new ApiError(response.status, detail, response.headers.get("Retry-After"));
  }
  return data;
}

/** The newest `MAX_ROWS` items of a list (the API lists oldest first). */
async function newest(path, token) {
  const first = await api(`${path}?limit=${MAX_ROWS}`, { token });
  if (first.total <= MAX_ROWS) {
    return first;
  }
  return api(`${path}?limit=${MAX_ROWS}&offset=${first.total - MAX_ROWS}`, { token });
}

// ---- small DOM helpers -------------------------------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined && text !== null) {
    node.textContent = String(text);
  }
  return node;
}

/** A table cell: a string, or {text, sub, pill, className}. Text only: data never becomes markup. */
function cell(spec) {
  const value = typeof spec === "object" && spec !== null ? spec : { text: spec };
  const td = element("td", value.className);
  if (value.pill) {
    td.append(element("span", "pill " + value.pill, value.text));
  } else {
    td.append(document.createTextNode(value.text === null || value.text === undefined ? "" : String(value.text)));
  }
  if (value.extraPill) {
    td.append(" ", element("span", "pill " + value.extraPill.className, value.extraPill.text));
  }
  if (value.sub) {
    td.append(element("span", "sub", value.sub));
  }
  return td;
}

function flash(row) {
  row.classList.remove("flash");
  void row.offsetWidth; // restart the animation
  row.classList.add("flash");
}

function clock(timestamp) {
  return new Date(timestamp || Date.now()).toLocaleTimeString([], { hour12: false });
}

/** A resource's time: the time of day when it is today, else the date too. */
function when(iso) {
  const date = new Date(iso);
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay
    ? clock(date)
    : date.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
}

// ---- live tables -------------------------------------------------------------------------------

/** Rows keyed by id, newest first, updated in place; `version` never goes backwards. */
class LiveTable {
  constructor({ table, count, noun, cells, onChange }) {
    this.tbody = $(table).tBodies[0];
    this.count = $(count);
    this.noun = noun;
    this.cells = cells;
    this.onChange = onChange || (() => {});
    this.items = new Map();
    this.rows = new Map();
    this.total = null;
    this.columns = $(table).tHead.rows[0].cells.length;
    this.showEmpty("Loading…");
  }

  showEmpty(text) {
    this.tbody.replaceChildren();
    const row = element("tr");
    const td = element("td", "empty", text);
    td.colSpan = this.columns;
    row.append(td);
    this.tbody.append(row);
  }

  replaceAll(page) {
    this.items.clear();
    this.rows.clear();
    this.tbody.replaceChildren();
    const sorted = page.items.slice().sort((a, b) => b.id - a.id);
    for (const item of sorted) {
      this.items.set(item.id, item);
      const row = this.render(item);
      this.rows.set(item.id, row);
      this.tbody.append(row);
    }
    this.total = page.total;
    this.updateCount();
  }

  render(item) {
    const row = element("tr");
    row.id = `${this.noun}-${item.id}`;
    row.dataset.id = String(item.id);
    this.fill(row, item);
    return row;
  }

  fill(row, item) {
    row.dataset.version = item.version === undefined ? "" : String(item.version);
    row.replaceChildren(...this.cells(item).map(cell));
  }

  /** Insert or update; returns false when the item is older than what is shown. */
  upsert(item, { highlight = true } = {}) {
    const known = this.items.get(item.id);
    if (known && typeof known.version === "number" && typeof item.version === "number" && item.version < known.version) {
      return false;
    }
    const merged = known ? { ...known, ...item } : item;
    this.items.set(item.id, merged);
    let row = this.rows.get(item.id);
    if (row) {
      this.fill(row, merged);
    } else {
      row = this.render(merged);
      this.rows.set(item.id, row);
      this.insertInOrder(row, item.id);
      if (this.total !== null) {
        this.total += 1;
      }
      this.trim();
    }
    if (highlight) {
      flash(row);
    }
    this.updateCount();
    this.onChange();
    return true;
  }

  /** Change some fields of a shown row (events that carry only part of a resource). */
  patch(id, fields) {
    const known = this.items.get(id);
    if (known) {
      this.upsert({ ...known, ...fields, version: known.version });
    }
  }

  remove(id) {
    const row = this.rows.get(id);
    if (!row) {
      return;
    }
    row.remove();
    this.rows.delete(id);
    this.items.delete(id);
    if (this.total !== null) {
      this.total = Math.max(0, this.total - 1);
    }
    this.updateCount();
    this.onChange();
  }

  refreshAll() {
    for (const [id, row] of this.rows) {
      this.fill(row, this.items.get(id));
    }
  }

  highlight(id) {
    const row = this.rows.get(id);
    if (row) {
      flash(row);
    }
  }

  insertInOrder(row, id) {
    for (const other of this.tbody.rows) {
      if (Number(other.dataset.id) < id) {
        this.tbody.insertBefore(row, other);
        return;
      }
    }
    const placeholder = this.tbody.querySelector("td.empty");
    if (placeholder) {
      placeholder.parentElement.remove();
    }
    this.tbody.append(row);
  }

  trim() {
    while (this.rows.size > MAX_ROWS) {
      const oldest = Math.min(...this.rows.keys());
      this.rows.get(oldest).remove();
      this.rows.delete(oldest);
      this.items.delete(oldest);
    }
  }

  updateCount() {
    const shown = this.rows.size;
    if (shown === 0 && this.total !== null) {
      this.showEmpty(`No ${this.noun}s yet.`);
    }
    this.count.textContent = this.total === null ? "" : shown < this.total ? `newest ${shown} of ${this.total}` : `${this.total}`;
  }
}

let settings = { low_stock_threshold: 5 };

function threshold(product) {
  return product.low_stock_threshold === null || product.low_stock_threshold === undefined
    ? settings.low_stock_threshold
    : product.low_stock_threshold;
}

const sellers = new LiveTable({
  table: "sellers-table",
  count: "sellers-count",
  noun: "seller",
  cells: (s) => [{ text: s.name, sub: s.notes || null }, s.email || "—"],
  onChange: () => products.refreshAll(),
});

const products = new LiveTable({
  table: "products-table",
  count: "products-count",
  noun: "product",
  cells: (p) => {
    const seller = p.seller_id === null ? null : sellers.items.get(p.seller_id);
    const low = threshold(p);
    let extraPill = null;
    if (p.stock === 0) {
      extraPill = { className: "out", text: "out" };
    } else if (low !== null && p.stock <= low) {
      extraPill = { className: "low", text: "low" };
    }
    return [
      { text: p.sku, className: "sku" },
      p.name,
      { text: seller ? seller.name : p.seller_id === null ? "—" : `#${p.seller_id}`, className: "optional" },
      { text: `${p.price} ${p.currency}`, className: "num" },
      { text: p.stock, className: "num stock", extraPill },
      { text: p.status, pill: p.status, className: "optional" },
    ];
  },
});

const orders = new LiveTable({
  table: "orders-table",
  count: "orders-count",
  noun: "order",
  cells: (o) => {
    const customer = o.customer || {};
    const quantity = (o.items || []).reduce((sum, item) => sum + item.quantity, 0);
    return [
      { text: o.external_id ? `#${o.external_id}` : `#${o.id}`, className: "ref", sub: o.created_at ? when(o.created_at) : null },
      { text: customer.name || "—", sub: customer.email || null },
      { text: quantity, className: "num optional" },
      { text: `${o.total} ${o.currency}`, className: "num" },
      { text: o.status, pill: o.status },
    ];
  },
});

// ---- toasts, system notifications, the event log -----------------------------------------------

function toast({ title, message, level = "info" }) {
  const box = $("toasts");
  while (box.children.length >= MAX_TOASTS) {
    box.firstElementChild.remove();
  }
  const node = element("div", `toast ${level} entering`);
  // No role of its own: the container is the (polite) live region that announces it.
  const body = element("div", "toast-body");
  body.append(element("p", "toast-title", title));
  if (message) {
    body.append(element("p", "toast-message", message));
  }
  const close = element("button", "toast-close", "×");
  close.type = "button";
  close.setAttribute("aria-label", `Dismiss: ${title}`);
  node.append(body, close);
  box.append(node);
  requestAnimationFrame(() => node.classList.remove("entering"));
  let timer = null;
  const dismiss = () => {
    clearTimeout(timer);
    node.classList.add("leaving");
    setTimeout(() => node.remove(), 400);
  };
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(dismiss, TOAST_MS);
  };
  close.addEventListener("click", dismiss);
  // Keep it while the pointer or the keyboard is on it, so it can be read and dismissed.
  node.addEventListener("mouseenter", () => clearTimeout(timer));
  node.addEventListener("mouseleave", arm);
  node.addEventListener("focusin", () => clearTimeout(timer));
  node.addEventListener("focusout", arm);
  arm();
  systemNotification(title, message);
}

function systemNotification(title, body) {
  if (!("Notification" in window) || Notification.permission !== "granted" || document.visibilityState === "visible") {
    return; // the toast is enough while the page is in front
  }
  try {
    // One tag per text: the tabs of this page all show it, the browser keeps one.
    new Notification(title, { body: body || "", tag: `dropsync:${title}:${body}` });
  } catch (error) {
    // Android Chrome allows notifications only from a service worker: the toast remains.
  }
}

function setUpNotificationButton() {
  const button = $("notify-button");
  button.hidden = !("Notification" in window) || Notification.permission !== "default";
  button.onclick = async () => {
    await Notification.requestPermission();
    button.hidden = Notification.permission !== "default";
  };
}

const TOASTS = {
  order_created: (d) => ({
    title: `New order ${d.external_id ? "#" + d.external_id : "#" + d.id}`,
    message: `${(d.customer && d.customer.name) || "A customer"} · ${d.total} ${d.currency}`,
    level: "success",
  }),
  stock_low: (d) => ({ title: `Low stock: ${d.sku}`, message: `${d.stock} left (threshold ${d.threshold})`, level: "warning" }),
  stock_out: (d) => {
    const product = products.items.get(d.product_id);
    return { title: `Out of stock: ${d.sku}`, message: product ? `${product.name} is sold out.` : "Sold out.", level: "error" };
  },
  system_notification: (d) => ({ title: d.title, message: d.message, level: d.level || "info" }),
};

function summary(message) {
  const d = message.data || {};
  switch (message.type) {
    case "connected":
      return `${d.transport}, from #${d.last_event_id}`;
    case "error":
      return `${d.code}: ${d.message}`;
    case "resync_required":
      return `reloading lists (latest #${d.latest_id})`;
    case "disconnected":
      return d.reason;
    case "product_stock_changed":
    case "product_price_changed":
      return `${d.sku}: ${d.old} → ${d.new}`;
    case "order_status_changed":
      return `order ${d.order_id}: ${d.old} → ${d.new}`;
    case "stock_low":
    case "stock_out":
      return `${d.sku}: ${d.stock} (threshold ${d.threshold})`;
    case "system_notification":
      return d.title;
    default:
      return d.sku || d.name || d.external_id || (d.id !== undefined ? `id ${d.id}` : "");
  }
}

function logMessage(message) {
  const list = $("event-log");
  const kind = typeof message.id === "number" ? "event" : "connection";
  const item = element("li", message.type === "disconnected" || message.type === "error" ? `${kind} trouble` : kind);
  item.append(
    element("time", null, clock(message.timestamp)),
    element("span", "id", typeof message.id === "number" ? `#${message.id}` : "—"),
    element("span", "type", message.type),
    element("span", "summary", summary(message)),
  );
  item.lastElementChild.title = item.lastElementChild.textContent; // the whole line on hover
  list.prepend(item);
  while (list.children.length > LOG_SIZE) {
    list.lastElementChild.remove();
  }
  if (typeof message.id === "number") {
    $("log-last").textContent = `last #${message.id}`;
  }
}

// ---- applying events ---------------------------------------------------------------------------

const APPLY = {
  product_added: (d) => products.upsert(d),
  product_updated: (d) => products.upsert(d),
  product_deleted: (d) => products.remove(d.id),
  product_stock_changed: (d) => products.patch(d.product_id, { stock: d.new }),
  product_price_changed: (d) => products.patch(d.product_id, { price: d.new }),
  product_synced: (d) => products.patch(d.product_id, { shopify_id: d.shopify_id, synced_at: d.synced_at }),
  seller_added: (d) => sellers.upsert(d),
  seller_updated: (d) => sellers.upsert(d),
  seller_deleted: (d) => sellers.remove(d.id),
  order_created: (d) => orders.upsert(d),
  order_updated: (d) => orders.upsert(d),
  order_processed: (d) => d.id !== undefined && d.items !== undefined && orders.upsert(d),
  order_status_changed: (d) => orders.patch(d.order_id, { status: d.new }),
  stock_low: (d) => products.highlight(d.product_id),
  stock_out: (d) => products.highlight(d.product_id),
  settings_updated: (d) => {
    settings = { ...settings, ...d };
    products.refreshAll();
  },
};

let client = null;
let token = null;
let loadedOnce = false;
let loadSeq = 0;
let pending = null; // events received while the lists load, applied after them in order

function onMessage(message) {
  logMessage(message);
  if (typeof message.id !== "number") {
    return; // connected, error, resync_required: the client and the badge deal with them
  }
  if (pending) {
    pending.push(message);
  } else {
    apply(message);
  }
  const makeToast = TOASTS[message.type];
  if (makeToast) {
    toast(makeToast(message.data || {}));
  }
}

function apply(message) {
  const handler = APPLY[message.type];
  if (handler) {
    handler(message.data || {});
  }
}

async function loadLists() {
  const seq = ++loadSeq;
  pending = pending || [];
  try {
    const [settingsNow, sellerPage, productPage, orderPage] = await Promise.all([
      api("/settings", { token }),
      newest("/sellers", token),
      newest("/products", token),
      newest("/orders", token),
    ]);
    if (seq !== loadSeq) {
      return; // a newer load (resync) is under way; it applies the events
    }
    settings = settingsNow;
    sellers.replaceAll(sellerPage);
    products.replaceAll(productPage);
    orders.replaceAll(orderPage);
    const events = pending;
    pending = null;
    for (const message of events) {
      apply(message);
    }
    loadedOnce = true;
    document.body.dataset.loaded = "true";
  } catch (error) {
    if (seq !== loadSeq) {
      return;
    }
    pending = null;
    if (error.status === 401) {
      signOut("Your session has ended. Please sign in again.");
      return;
    }
    for (const table of [products, orders, sellers]) {
      table.showEmpty(`Could not load: ${error.message}`);
    }
    loadedOnce = false; // the next "live" tries again
  }
}

// ---- the connection badge ----------------------------------------------------------------------

let liveTimer = null;
let troubled = false;
let retryTicker = null;

function showState(state, info = {}) {
  const badge = $("connection-badge");
  const detail = $("connection-detail");
  document.body.dataset.connection = state;
  clearTimeout(liveTimer);
  clearInterval(retryTicker);
  detail.replaceChildren();
  if (state === "live") {
    troubled = false;
    badge.dataset.state = "live";
    badge.textContent = "Live";
    badge.classList.add("shown");
    liveTimer = setTimeout(() => badge.classList.remove("shown"), LIVE_BADGE_MS);
    if (!loadedOnce) {
      loadLists();
    }
    return;
  }
  if (state === "offline") {
    if (!troubled && info.reason && info.reason !== "stopped") {
      const code = info.closeCode ? ` (close code ${info.closeCode})` : "";
      logMessage({ type: "disconnected", data: { reason: info.reason + code } });
    }
    troubled = true;
  }
  if (state === "connecting" && !troubled) {
    badge.dataset.state = "connecting";
    badge.textContent = "Connecting…";
    badge.classList.add("shown");
    return;
  }
  badge.dataset.state = "offline";
  badge.textContent = "Offline";
  badge.classList.add("shown");
  if (state === "connecting") {
    detail.textContent = "reconnecting…";
  } else if (info.gaveUp) {
    const again = element("button", "button secondary", "Retry now");
    again.type = "button";
    again.addEventListener("click", () => client && client.reconnect());
    detail.append("Not retrying. ", again);
  } else if (info.retryInMs) {
    const at = Date.now() + info.retryInMs;
    const tick = () => {
      detail.textContent = `retrying in ${Math.max(0, Math.ceil((at - Date.now()) / 1000))} s`;
    };
    tick();
    retryTicker = setInterval(tick, 1000);
  }
}

// ---- signing in and out ------------------------------------------------------------------------

function showSignIn(message = "") {
  $("dashboard").hidden = true;
  $("account").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message;
  clearTimeout(liveTimer);
  clearInterval(retryTicker);
  const badge = $("connection-badge");
  badge.classList.remove("shown");
  badge.dataset.state = "idle";
  badge.textContent = "";
  $("connection-detail").replaceChildren();
  delete document.body.dataset.connection;
  $("username").focus();
}

async function enter(accessToken) {
  token = accessToken;
  let me;
  try {
    me = await api("/auth/me", { token });
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(error.status === 401 ? "Your session has ended. Please sign in again." : error.message);
    return;
  }
  $("signin").hidden = true;
  $("dashboard").hidden = false;
  $("account").hidden = false;
  $("account-name").textContent = `Signed in as ${me.username}`;
  setUpNotificationButton();
  loadedOnce = false;
  troubled = false;
  client = new DropsyncClient({
    url: location.origin,
    token,
    transport: config.transport,
    reconnect: config.reconnect,
    heartbeatMs: config.heartbeatMs,
    share: config.share,
    shareKey: `${location.origin}|user-${me.id}`,
    onResync: () => loadLists(),
    onError: (error) => {
      if (error.code === "unauthorized") {
        signOut("Your session has ended. Please sign in again.");
      } else {
        toast({ title: "Live updates stopped", message: error.message, level: "error" });
      }
    },
  });
  client.on("*", onMessage);
  client.onState(showState);
  client.start();
  window.dropsync.client = client;
}

function signOut(message = "") {
  if (client) {
    client.stop();
    client = null;
  }
  if (token) {
    api("/auth/token", { method: "DELETE", token }).catch(() => {});
  }
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  loadSeq += 1;
  pending = null;
  for (const table of [products, orders, sellers]) {
    table.items.clear();
    table.rows.clear();
    table.total = null;
    table.showEmpty("Loading…");
    table.count.textContent = "";
  }
  $("event-log").replaceChildren();
  $("log-last").textContent = "";
  showSignIn(message);
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = $("username").value.trim();
  const password = $("password").value;
  const error = $("signin-error");
  if (!username || !password) {
    error.textContent = "Enter your username and password.";
    (username ? $("password") : $("username")).focus();
    return;
  }
  const button = $("signin-button");
  button.disabled = true;
  error.textContent = "";
  try {
    const issued = await api("/auth/token", { method: "POST", body: { username, password } });
    sessionStorage.setItem(TOKEN_KEY, issued.access_token);
    $("password").value = "";
    await enter(issued.access_token);
    $("main").focus();
  } catch (failure) {
    if (failure.status === 401) {
      error.textContent = "Wrong username or password.";
    } else if (failure.status === 429) {
      error.textContent = `Too many attempts. Try again in ${failure.retryAfter || "a few"} seconds.`;
    } else {
      error.textContent = failure.message || "Sign-in failed.";
    }
    $("password").focus();
  } finally {
    button.disabled = false;
  }
});

$("signout-button").addEventListener("click", () => signOut());

window.dropsync = { client: null, products, orders, sellers, config };

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) {
  enter(saved);
} else {
  showSignIn();
}
