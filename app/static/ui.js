/**
 * Small pieces of the dashboard's UI: building elements (text only: data never becomes markup),
 * toasts that keep clear of the event log, and the event log itself, oldest first.
 */

import { reasonText } from "/static/dropsync.js";

export const $ = (id) => document.getElementById(id);

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined && text !== null) {
    node.textContent = String(text);
  }
  return node;
}

export function button(text, { label, className = "button secondary small", onClick } = {}) {
  const node = element("button", className, text);
  node.type = "button";
  if (label) {
    node.setAttribute("aria-label", label);
  }
  if (onClick) {
    node.addEventListener("click", onClick);
  }
  return node;
}

export function flash(node) {
  node.classList.remove("flash");
  void node.offsetWidth; // restart the animation
  node.classList.add("flash");
}

export function clock(timestamp) {
  return new Date(timestamp || Date.now()).toLocaleTimeString([], { hour12: false });
}

/** A resource's time: the time of day when it is today, else the date too. */
export function when(iso) {
  const date = new Date(iso);
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay
    ? clock(date)
    : date.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
}

/** Show `text` in a status line (role=status) for a while; `level` "error" keeps it until replaced. */
export function status(id, text, level = "ok") {
  const line = $(id);
  clearTimeout(line._timer);
  line.textContent = text;
  line.dataset.level = level;
  if (level !== "error" && text) {
    line._timer = setTimeout(() => {
      line.textContent = "";
    }, 6000);
  }
}

// ---- forms -------------------------------------------------------------------------------------

/** Wire a disclosure button to its form; returns a function that closes the form. */
export function disclosure(toggleId, formId, focusId) {
  const toggle = $(toggleId);
  const form = $(formId);
  const close = () => {
    form.hidden = true;
    toggle.setAttribute("aria-expanded", "false");
  };
  toggle.addEventListener("click", () => {
    const open = form.hidden;
    form.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) {
      $(focusId).focus();
    }
  });
  form.querySelector("[data-cancel]").addEventListener("click", () => {
    close();
    toggle.focus();
  });
  return close;
}

/** Mark the inputs the server named as bad (`fields`: key → message); returns the readable text. */
export function markFields(form, error) {
  for (const input of form.querySelectorAll("input, select")) {
    input.removeAttribute("aria-invalid");
  }
  for (const key of Object.keys(error.fields || {})) {
    const input = form.elements.namedItem(key.split(".")[0]);
    if (input) {
      input.setAttribute("aria-invalid", "true");
    }
  }
  return error.message;
}

// ---- toasts -------------------------------------------------------------------------------------

const TOAST_MS = 8000;
const MAX_TOASTS_WIDE = 4;
const MAX_TOASTS_NARROW = 2;
const NARROW = window.matchMedia("(max-width: 640px)");

/**
 * A toast. The stack sits at the bottom of the screen, or at the top when the event log is there:
 * a toast never covers the log (on a wide screen the log panel also leaves room for the stack).
 */
export function toast({ title, message, level = "info" }) {
  const box = $("toasts");
  const most = NARROW.matches ? MAX_TOASTS_NARROW : MAX_TOASTS_WIDE;
  while (box.children.length >= most) {
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
  placeToasts();
  requestAnimationFrame(() => node.classList.remove("entering"));
  let timer = null;
  const dismiss = () => {
    clearTimeout(timer);
    node.classList.add("leaving");
    setTimeout(() => {
      node.remove();
      placeToasts();
    }, 400);
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
  return node;
}

function overlaps(a, b) {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

/** Put the toast stack where it does not cover the event log: bottom first, else top. */
export function placeToasts() {
  const box = $("toasts");
  const height = box.children.length ? box.getBoundingClientRect().height : 0;
  // A wide layout's log panel shrinks by the stack's height (CSS --toasts-h) instead of being covered.
  document.documentElement.style.setProperty("--toasts-h", `${Math.ceil(height)}px`);
  const log = $("log");
  if (!height || !log || log.offsetParent === null) {
    box.dataset.edge = "bottom";
    return;
  }
  const area = log.getBoundingClientRect();
  const boxRect = box.getBoundingClientRect();
  const margin = 8;
  const bottom = { left: boxRect.left, right: boxRect.right, top: innerHeight - margin - height, bottom: innerHeight - margin };
  const top = { left: boxRect.left, right: boxRect.right, top: margin, bottom: margin + height };
  box.dataset.edge = !overlaps(bottom, area) || overlaps(top, area) ? "bottom" : "top";
}

let placing = false;
function placeSoon() {
  if (!placing) {
    placing = true;
    requestAnimationFrame(() => {
      placing = false;
      placeToasts();
    });
  }
}
addEventListener("scroll", placeSoon, { passive: true });
addEventListener("resize", placeSoon);

// ---- the event log ------------------------------------------------------------------------------

const LOG_SIZE = 200;

const CONNECTION_SUMMARY = {
  connected: (d) => `live over ${d.transport === "ws" ? "WebSocket" : "SSE"}, from #${d.last_event_id}`,
  error: (d) => capitalized(d.message || reasonText(d.code)),
  resync_required: (d) => `missed events are no longer kept: lists reloaded (latest #${d.latest_id})`,
  disconnected: (d) => capitalized(d.text),
};

function capitalized(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : "";
}

function summary(message) {
  const d = message.data || {};
  if (CONNECTION_SUMMARY[message.type]) {
    return CONNECTION_SUMMARY[message.type](d);
  }
  switch (message.type) {
    case "product_stock_changed":
    case "product_price_changed":
      return `${d.sku}: ${d.old} → ${d.new}`;
    case "product_updated":
      return `${d.sku}: ${(d.changed || []).join(", ")}`;
    case "order_status_changed":
      return `order ${d.order_id}: ${d.old} → ${d.new}`;
    case "stock_low":
    case "stock_out":
      return `${d.sku}: ${d.stock} (threshold ${d.threshold})`;
    case "stock_sync_started":
      return `job ${d.job_id}: ${d.total} items`;
    case "stock_sync_completed":
      return `job ${d.job_id}: done`;
    case "seller_products_fetched":
      return `seller ${d.seller_id}: ${d.added} added, ${d.updated} updated`;
    case "system_notification":
      return d.title;
    default:
      return d.sku || d.name || d.external_id || (d.id !== undefined ? `id ${d.id}` : "");
  }
}

/** Append one line, oldest first (the order things happened); follow the end unless scrolled up. */
export function logMessage(message) {
  const list = $("event-log");
  const following = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
  const recorded = typeof message.id === "number";
  const trouble = message.type === "disconnected" || message.type === "error";
  const item = element("li", `${recorded ? "event" : "connection"}${trouble ? " trouble" : ""}`);
  const line = summary(message);
  item.append(
    element("time", null, clock(message.timestamp)),
    element("span", "id", recorded ? `#${message.id}` : "—"),
    element("span", "type", message.type),
    element("span", "summary", line),
  );
  item.title = `${message.type}: ${line}`; // the whole line on hover, even when cut
  list.append(item);
  while (list.children.length > LOG_SIZE) {
    list.firstElementChild.remove();
  }
  if (following) {
    list.scrollTop = list.scrollHeight;
  }
  if (recorded) {
    $("log-last").textContent = `last #${message.id}`;
  }
}

// The sticky header's height, for the log panel and the toasts placed under it (CSS --header-h).
const topbar = document.querySelector(".topbar");
if (topbar && typeof ResizeObserver === "function") {
  new ResizeObserver(() => {
    document.documentElement.style.setProperty("--header-h", `${Math.ceil(topbar.getBoundingClientRect().height)}px`);
    placeSoon();
  }).observe(topbar);
}
