/**
 * The orders table and its workflows: process (take the items out of stock), add a shipment, mark
 * delivered, cancel, and fetch new orders from the store.
 *
 * Each action sends `If-Match` with the version shown, so acting on an order someone else just
 * changed is refused (412) and said plainly; the row itself only ever changes from the stream.
 */

import { api } from "/static/api.js";
import { session } from "/static/session.js";
import { LiveTable, confirming, dropNotice, noticeRow } from "/static/tables.js";
import { $, button, element, status, when } from "/static/ui.js";

const COLUMNS = 6;

export const orders = new LiveTable({
  table: "orders-table",
  count: "orders-count",
  noun: "order",
  create,
  update,
  removed: (row) => dropNotice(row),
});

export function orderName(order) {
  return `#${order.external_id || order.id}`;
}

function create() {
  const row = element("tr");
  row._cells = {};
  for (const [key, label, className] of [
    ["ref", "Order", "ref"],
    ["customer", "Customer", "customer"],
    ["items", "Items", "items"],
    ["total", "Total", "num total"],
    ["status", "Status", "status"],
    ["actions", null, "actions"],
  ]) {
    const td = element("td", className);
    if (label) {
      td.dataset.label = label;
    }
    row._cells[key] = td;
    row.append(td);
  }
  return row;
}

function update(row, order, before) {
  const cells = row._cells;
  const name = orderName(order);
  cells.ref.replaceChildren(name);
  if (order.created_at) {
    cells.ref.append(element("span", "sub", when(order.created_at)));
  }
  const customer = order.customer || {};
  cells.customer.replaceChildren(customer.name || "—");
  if (customer.email) {
    cells.customer.append(element("span", "sub", customer.email));
  }
  const lines = (order.items || []).map((item) => `${item.quantity} × ${item.sku}`);
  cells.items.textContent = lines.join(", ") || "—";
  cells.total.textContent = `${order.total} ${order.currency}`;
  cells.status.replaceChildren(element("span", `pill ${order.status}`, order.status));
  if (order.tracking_number) {
    cells.status.append(element("span", "sub", `${order.carrier || ""} ${order.tracking_number}`.trim()));
  }
  if (!before || before.status !== order.status || !cells.actions.childElementCount) {
    cells.actions.replaceChildren(...actionsFor(row, order));
    if (before && before.status !== order.status && row._notice && row._notice.classList.contains("shipment")) {
      dropNotice(row); // shipped (or cancelled) meanwhile: the form has nothing left to do
    }
  }
}

/** The moves an order in this status allows: pending → processing → shipped → delivered, or cancelled. */
function actionsFor(row, order) {
  const id = order.id;
  const name = orderName(order);
  const cancel = () =>
    confirming(button("Cancel", { label: `Cancel order ${name}`, className: "button secondary small danger" }), {
      confirmText: "Confirm cancel",
      confirmLabel: `Confirm cancel order ${name}`,
      action: () => act(row, id, "cancelled", { method: "PATCH", path: `/orders/${id}`, body: { status: "cancelled" } }),
    });
  switch (order.status) {
    case "pending":
      return [
        button("Process", {
          label: `Process order ${name}`,
          className: "button small",
          onClick: () => act(row, id, "processed", { method: "POST", path: `/orders/${id}/process` }),
        }),
        cancel(),
      ];
    case "processing":
      return [
        button("Add shipment", {
          label: `Add shipment to order ${name}`,
          className: "button small",
          onClick: () => shipmentForm(row, id),
        }),
        cancel(),
      ];
    case "shipped":
      return [
        button("Delivered", {
          label: `Mark order ${name} delivered`,
          onClick: () =>
            act(row, id, "marked delivered", { method: "PATCH", path: `/orders/${id}`, body: { status: "delivered" } }),
        }),
      ];
    default:
      return [];
  }
}

/** Send one workflow step with the version shown; a refusal is said on the row. */
async function act(row, id, done, { method, path, body }) {
  const order = orders.items.get(id);
  if (!order) {
    return false;
  }
  const name = orderName(order);
  try {
    await api(path, { method, token: session.token, version: order.version, body });
    if (row._notice && row._notice.classList.contains("problem")) {
      dropNotice(row); // an earlier refusal no longer applies
    }
    status("orders-status", `Order ${name} ${done}.`);
    return true;
  } catch (error) {
    let message;
    if (error.status === 412) {
      const now = orders.items.get(id) || order;
      message = `Someone else changed order ${name} first (it is now ${now.status}): nothing was done. Check it and try again.`;
    } else if (error.status === 409) {
      message = `Order ${name} was not ${done}: ${error.message}`;
    } else {
      message = `Order ${name} was not ${done}: ${error.message}`;
    }
    const td = noticeRow(row, COLUMNS, "problem");
    const box = element("div", "notice error");
    box.setAttribute("role", "alert");
    box.append(
      element("p", "notice-text", message),
      button("Dismiss", { label: `Dismiss the message about order ${name}`, onClick: () => dropNotice(row) }),
    );
    td.append(box);
    return false;
  }
}

function shipmentForm(row, id) {
  const order = orders.items.get(id);
  const name = orderName(order);
  const td = noticeRow(row, COLUMNS, "shipment");
  const form = element("form", "inline-form shipment-form");
  form.noValidate = true;
  form.setAttribute("aria-label", `Shipment of order ${name}`);
  const field = (key, text) => {
    const wrap = element("div", "field");
    const label = element("label", null, text);
    const input = element("input");
    input.name = key;
    input.id = `ship-${id}-${key}`;
    input.required = true;
    input.autocomplete = "off";
    label.htmlFor = input.id;
    wrap.append(label, input);
    return wrap;
  };
  const error = element("p", "form-error");
  error.setAttribute("role", "alert");
  const actions = element("div", "form-actions");
  const submit = element("button", "button small", "Ship");
  submit.type = "submit";
  submit.setAttribute("aria-label", `Ship order ${name}`);
  actions.append(submit, button("Cancel", { label: `Close the shipment of order ${name}`, onClick: () => dropNotice(row) }));
  form.append(field("carrier", "Carrier"), field("tracking_number", "Tracking number"), actions, error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { carrier: form.elements.carrier.value.trim(), tracking_number: form.elements.tracking_number.value.trim() };
    if (!body.carrier || !body.tracking_number) {
      error.textContent = "Enter the carrier and the tracking number.";
      return;
    }
    submit.disabled = true;
    const current = orders.items.get(id);
    try {
      await api(`/orders/${id}/shipment`, { method: "POST", token: session.token, version: current.version, body });
      dropNotice(row);
      status("orders-status", `Order ${name} shipped.`);
    } catch (failure) {
      error.textContent =
        failure.status === 412
          ? `Someone else changed order ${name} first (it is now ${orders.items.get(id).status}). Nothing was shipped.`
          : `Not shipped: ${failure.message}`;
    } finally {
      submit.disabled = false;
    }
  });
  td.append(form);
  form.elements.carrier.focus();
}

$("orders-fetch").addEventListener("click", async (event) => {
  const fetchButton = event.currentTarget;
  fetchButton.disabled = true;
  try {
    const answer = await api("/orders/fetch", { method: "POST", token: session.token });
    const count = answer.created;
    status("orders-status", count ? `${count} new order${count === 1 ? "" : "s"} from the store.` : "No new orders in the store.");
  } catch (error) {
    status("orders-status", `Could not fetch orders: ${error.message}`, "error");
  } finally {
    fetchButton.disabled = false;
  }
});
