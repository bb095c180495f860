/**
 * dropsync's service worker (served at /sw.js, scope "/"): shows push notifications while no tab
 * is open, and a click on one focuses a dashboard tab (or opens one) on that order or product.
 *
 * A push's data is the JSON the server sends (see docs/push.md):
 *   {"title", "body", "url": "/#order-12", "tag": "order:12", "type", "event_id"}
 * It has no fetch handler: it never stands between the dashboard and the API or the streams.
 */

const FALLBACK = { title: "dropsync", body: "", url: "/", tag: "dropsync" };

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function parse(data) {
  if (!data) {
    return FALLBACK;
  }
  try {
    const message = data.json();
    return message && typeof message === "object" ? { ...FALLBACK, ...message } : FALLBACK;
  } catch (error) {
    return { ...FALLBACK, body: data.text() };
  }
}

self.addEventListener("push", (event) => {
  const message = parse(event.data);
  event.waitUntil(
    self.registration.showNotification(String(message.title), {
      body: String(message.body || ""),
      // The same tag replaces the shown notification: a repeat after a server crash, or a newer
      // stock alert for the same SKU, does not stack.
      tag: String(message.tag || "dropsync"),
      renotify: message.type !== "stock_low" && message.type !== "stock_out",
      data: { url: message.url || "/", type: message.type, event_id: message.event_id },
    }),
  );
});

/** Focus a tab of the dashboard and show `url` there, or open a new tab on it. */
async function openView(url) {
  const target = new URL(url || "/", self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const tab = windows.find((client) => new URL(client.url).origin === self.location.origin);
  if (tab) {
    tab.postMessage({ type: "dropsync:open", url: target });
    try {
      await tab.focus();
    } catch (error) {
      // Focusing needs the click's user activation; the tab has the message either way.
    }
    return tab;
  }
  return self.clients.openWindow(target);
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const opening = openView(event.notification.data && event.notification.data.url);
  if (event.isTrusted) {
    event.waitUntil(opening); // a click dispatched by a script (DevTools, tests) cannot extend its life
  }
});
