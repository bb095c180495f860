/**
 * The dropsync dashboard: sign in, then live tables of products, orders and sellers that can act
 * (edit in place, add, delete, bulk operations, feeds, order workflows, settings), a connection
 * badge, toasts and an event log. Plain ES modules, no build step; the stream comes from
 * ./dropsync.js (the clients/js package's file).
 *
 * Every action's result arrives through the stream like anyone else's change: the tables change
 * from events only, never from a request's answer, so two devices show the same thing.
 *
 * Consistency: the lists are loaded once the stream is live (its `connected` message fixes where the
 * stream starts), and the events that arrive while they load are applied afterwards, in order. An
 * event only ever sets a row to the state it describes, and a row never goes back to an older
 * `version`, so applying an event the loaded list already reflects changes nothing.
 *
 * Options, for testing and by hand: `?transport=sse|ws`, or `window.DROPSYNC_DASHBOARD = {transport,
 * reconnect, heartbeatMs, share}` set before this module runs.
 */

import { api, newest } from "/static/api.js";
import { DropsyncClient, reasonText } from "/static/dropsync.js";
import { orderName, orders } from "/static/orders.js";
import { clearSelection, products, refreshSellerChoices } from "/static/products.js";
import { enablePush, watchOpenRequests } from "/static/push.js";
import { createSellers } from "/static/sellers.js";
import { session } from "/static/session.js";
import { resetSettingsForm, showSettings } from "/static/settings.js";
import { MAX_ROWS } from "/static/tables.js";
import { $, logMessage, placeToasts, toast } from "/static/ui.js";

const TOKEN_KEY = "dropsync.token";
const LIVE_BADGE_MS = 3000;

const query = new URLSearchParams(location.search);
const config = { transport: query.get("transport") || "auto", ...(window.DROPSYNC_DASHBOARD || {}) };

const sellers = createSellers(() => {
  products.refreshAll(); // seller names in the products table
  refreshSellerChoices();
});
session.sellers = sellers.items;

// ---- toasts and system notifications ------------------------------------------------------------

/** A toast, and a system notification while the page is in the background (once allowed). */
function notify(spec) {
  toast(spec);
  systemNotification(spec.title, spec.message);
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
  button.hidden = !("Notification" in window);
  button.onclick = async () => {
    button.disabled = true;
    const result = await enablePush({ token: session.token }); // the service worker and a Web Push subscription (push.js)
    button.disabled = false;
    document.body.dataset.push = result.status;
    if (result.level) {
      toast({ title: result.title, message: result.message, level: result.level });
    }
    button.hidden = Notification.permission === "granted";
  };
}

const TOASTS = {
  order_created: (d) => ({
    title: `New order ${orderName(d)}`,
    message: `${(d.customer && d.customer.name) || "A customer"} · ${d.total} ${d.currency}`,
    level: "success",
  }),
  stock_low: (d) => ({ title: `Low stock: ${d.sku}`, message: `${d.stock} left (threshold ${d.threshold})`, level: "warning" }),
  stock_out: (d) => {
    const product = products.items.get(d.product_id);
    return { title: `Out of stock: ${d.sku}`, message: product ? `${product.name} is sold out.` : "Sold out.", level: "error" };
  },
  seller_products_fetched: (d) => {
    const seller = sellers.items.get(d.seller_id);
    return {
      title: `Feed imported${seller ? `: ${seller.name}` : ""}`,
      message: `${d.added} added, ${d.updated} updated of ${d.total}`,
      level: "success",
    };
  },
  system_notification: (d) => ({ title: d.title, message: d.message, level: d.level || "info" }),
};

// ---- applying events ----------------------------------------------------------------------------

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
    session.settings = { ...session.settings, ...d };
    showSettings(session.settings);
    products.refreshAll(); // the low-stock threshold
  },
};

let client = null;
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
    notify(makeToast(message.data || {}));
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
  const token = session.token;
  try {
    const [settingsNow, sellerPage, productPage, orderPage] = await Promise.all([
      api("/settings", { token }),
      newest("/sellers", token, MAX_ROWS),
      newest("/products", token, MAX_ROWS),
      newest("/orders", token, MAX_ROWS),
    ]);
    if (seq !== loadSeq) {
      return; // a newer load (resync) is under way; it applies the events
    }
    session.settings = settingsNow;
    showSettings(settingsNow);
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

// ---- the connection badge -----------------------------------------------------------------------

let liveTimer = null;
let troubled = false; // offline since the last "live": the badge keeps the first reason of the outage
let outage = "";
let retryTicker = null;

/** "the server is restarting (close code 1012)" */
function why(info) {
  const text = reasonText(info.reason);
  return info.closeCode && !["server_restart", "slow_consumer"].includes(info.reason)
    ? `${text} (close code ${info.closeCode})`
    : text;
}

/**
 * Live: a green "Live" for three seconds after connecting, then a quieter green "Live" that stays.
 * Offline: red, why, the time to the next try, and "Retry now".
 */
function showState(state, info = {}) {
  const badge = $("connection-badge");
  const detail = $("connection-detail");
  const retry = $("retry-button");
  document.body.dataset.connection = state;
  clearTimeout(liveTimer);
  clearInterval(retryTicker);
  detail.replaceChildren();
  badge.classList.remove("settled");
  if (state === "live") {
    troubled = false;
    retry.hidden = true;
    badge.dataset.state = "live";
    badge.textContent = "Live";
    badge.classList.add("shown");
    liveTimer = setTimeout(() => badge.classList.add("settled"), LIVE_BADGE_MS);
    if (!loadedOnce) {
      loadLists();
    }
    return;
  }
  if (state === "offline") {
    if (!troubled && info.reason && info.reason !== "stopped") {
      outage = why(info);
      logMessage({ type: "disconnected", data: { text: outage } });
    }
    troubled = true;
  }
  if (state === "connecting" && !troubled) {
    badge.dataset.state = "connecting";
    badge.textContent = "Connecting…";
    badge.classList.add("shown");
    retry.hidden = true;
    return;
  }
  badge.dataset.state = "offline";
  badge.textContent = "Offline";
  badge.classList.add("shown");
  retry.hidden = state !== "offline" || info.reason === "unauthorized";
  if (state === "connecting") {
    detail.textContent = "reconnecting…";
  } else if (info.gaveUp) {
    detail.textContent = `${why(info)}. Not retrying.`;
  } else if (info.retryInMs !== undefined) {
    const at = Date.now() + info.retryInMs;
    const reason = outage || why(info);
    const tick = () => {
      detail.textContent = `${reason}; retrying in ${Math.max(0, Math.ceil((at - Date.now()) / 1000))} s`;
    };
    tick();
    retryTicker = setInterval(tick, 1000);
  }
}

$("retry-button").addEventListener("click", () => client && client.reconnect());

// ---- signing in and out -------------------------------------------------------------------------

function showSignIn(message = "") {
  $("dashboard").hidden = true;
  $("account").hidden = true;
  $("connection").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message;
  clearTimeout(liveTimer);
  clearInterval(retryTicker);
  const badge = $("connection-badge");
  badge.classList.remove("shown", "settled");
  badge.dataset.state = "idle";
  badge.textContent = "";
  $("connection-detail").replaceChildren();
  delete document.body.dataset.connection;
  $("username").focus();
}

async function enter(accessToken) {
  session.token = accessToken;
  let me;
  try {
    me = await api("/auth/me", { token: accessToken });
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(error.status === 401 ? "Your session has ended. Please sign in again." : error.message);
    return;
  }
  $("signin").hidden = true;
  $("dashboard").hidden = false;
  $("account").hidden = false;
  $("connection").hidden = false;
  $("account-name").textContent = `Signed in as ${me.username}`;
  setUpNotificationButton();
  loadedOnce = false;
  troubled = false;
  client = new DropsyncClient({
    url: location.origin,
    token: accessToken,
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
        notify({ title: "Live updates stopped", message: `${reasonText(error.code)}: ${error.message}`, level: "error" });
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
  if (session.token) {
    api("/auth/token", { method: "DELETE", token: session.token }).catch(() => {});
  }
  session.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  loadSeq += 1;
  pending = null;
  clearSelection();
  for (const table of [products, orders, sellers]) {
    table.clear();
  }
  resetSettingsForm();
  $("event-log").replaceChildren();
  $("log-last").textContent = "";
  $("toasts").replaceChildren();
  placeToasts();
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
watchOpenRequests(); // /#order-12 and clicked notifications open that row (push.js)

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) {
  enter(saved);
} else {
  showSignIn();
}
