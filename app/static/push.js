/**
 * Push notifications in the dashboard: the "Enable notifications" button, and opening the view a
 * clicked notification points to. Plain ES module, no build step; the service worker is /sw.js.
 *
 * enablePush({token}) asks for permission, registers the service worker, subscribes with the
 * server's VAPID key and sends the subscription to POST /push/subscriptions. It never throws: it
 * answers {status, title, message, level} for a toast, where status is "subscribed",
 * "unsupported", "denied", "failed" (e.g. a browser without a push service, such as Chromium
 * builds without Google's keys, says so in `message`) or "unavailable" (the server sends no Web
 * Push; `level` is null: nothing to show, the page's own notifications still work).
 *
 * watchOpenRequests() makes `/#order-12` and `/#product-7` (the URLs in notifications) scroll to
 * and highlight that row, on load, on a hash change, and when the service worker asks a tab to
 * show a clicked notification's view. The row found is marked `.targeted`; body[data-view] names it.
 */

const SERVICE_WORKER = "/sw.js";
const VIEW = /^#(order|product)-(\d+)$/;
const FIND_ROW_MS = 10000;

export function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function keyBytes(base64url) {
  const base64 = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(base64), (character) => character.charCodeAt(0));
}

function sameKey(buffer, bytes) {
  if (!buffer) {
    return false;
  }
  const current = new Uint8Array(buffer);
  return current.length === bytes.length && current.every((value, index) => value === bytes[index]);
}

async function request(path, token, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Accept: "application/json", Authorization: "Bearer " + token, ...(options.headers || {}) },
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : response.statusText;
    throw Object.assign(new Error(detail), { status: response.status });
  }
  return body;
}

const failed = (message) => ({ status: "failed", title: "Notifications are not on", message, level: "error" });

export async function enablePush({ token }) {
  if (!pushSupported()) {
    return {
      status: "unsupported",
      title: "Notifications are not available",
      message: "This browser cannot receive push notifications.",
      level: "warning",
    };
  }
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    return {
      status: "denied",
      title: "Notifications are blocked",
      message: "Allow notifications for this site in the browser's site settings, then try again.",
      level: "warning",
    };
  }
  let key;
  try {
    key = keyBytes((await request("/push/vapid-public-key", token)).public_key);
  } catch (error) {
    if (error.status === 503) {
      // This server sends no Web Push: the page's own notifications (while it is open) are all there is.
      return { status: "unavailable", title: "", message: error.message, level: null };
    }
    return failed(error.message);
  }
  let registration;
  try {
    await navigator.serviceWorker.register(SERVICE_WORKER, { scope: "/" });
    registration = await navigator.serviceWorker.ready;
  } catch (error) {
    return failed(`The service worker could not be registered (${error.message}).`);
  }
  let subscription;
  try {
    subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameKey(subscription.options.applicationServerKey, key)) {
      await subscription.unsubscribe(); // made for another server key: it would not accept ours
      subscription = null;
    }
    subscription =
      subscription || (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }));
  } catch (error) {
    return failed(
      `This browser could not create a push subscription (${error.name}: ${error.message}). ` +
        "Browsers without a push service (e.g. Chromium builds without Google's keys) cannot receive pushes.",
    );
  }
  try {
    const saved = await request("/push/subscriptions", token, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(subscription.toJSON()),
    });
    return {
      status: "subscribed",
      id: saved.id,
      title: "Notifications are on",
      message: "New orders and stock alerts reach this browser even when the dashboard is closed.",
      level: "success",
    };
  } catch (error) {
    return failed(`The server did not accept the subscription: ${error.message}`);
  }
}

function highlightStyle() {
  if (document.getElementById("push-view-style")) {
    return;
  }
  const style = document.createElement("style");
  style.id = "push-view-style";
  style.textContent = "tr.targeted > td { background: #fff4c2; box-shadow: inset 0 -2px 0 #d9a400; }";
  document.head.append(style);
}

/** Scroll to and highlight the row `#order-12` / `#product-7` names, once it is on the page. */
export function showView(hash) {
  const match = VIEW.exec(hash || "");
  if (!match) {
    return;
  }
  const id = `${match[1]}-${match[2]}`;
  highlightStyle();
  const mark = (row) => {
    document.querySelectorAll("tr.targeted").forEach((other) => other.classList.remove("targeted"));
    row.classList.add("targeted");
    row.scrollIntoView({ block: "center" });
    document.body.dataset.view = id;
  };
  const row = document.getElementById(id);
  if (row) {
    mark(row);
    return;
  }
  // The lists load after sign-in: wait (bounded) for the row to appear.
  const observer = new MutationObserver(() => {
    const found = document.getElementById(id);
    if (found) {
      observer.disconnect();
      mark(found);
    }
  });
  observer.observe(document.body, { childList: true, subtree: true });
  setTimeout(() => observer.disconnect(), FIND_ROW_MS);
}

export function watchOpenRequests() {
  window.addEventListener("hashchange", () => showView(location.hash));
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data && event.data.type === "dropsync:open") {
        const url = new URL(event.data.url, location.origin);
        if (url.origin === location.origin) {
          history.pushState(null, "", url.pathname + url.search + url.hash);
          showView(url.hash);
        }
      }
    });
    if ("Notification" in window && Notification.permission === "granted") {
      // Keep the worker registered (and updated) for a browser that turned notifications on before.
      navigator.serviceWorker.register(SERVICE_WORKER, { scope: "/" }).catch(() => {});
    }
  }
  showView(location.hash);
}
