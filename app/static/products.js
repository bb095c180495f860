/**
 * The products table: price and stock edited in place, add, delete, push to the store, and bulk
 * operations on the selected rows.
 *
 * Every change is sent to the API and then *shown from the stream*, like anyone else's: a request's
 * answer never paints a row. An edit sends `If-Match` with the version the person started typing
 * from, so a change someone else made meanwhile is not overwritten in silence: the server answers
 * 412, and the row says what changed and offers to save anyway or keep theirs. While someone types,
 * events change the rest of the row but never the value under their cursor.
 */

import { api, versionOf } from "/static/api.js";
import { session, threshold } from "/static/session.js";
import { LiveTable, confirming, dropNotice, noticeRow } from "/static/tables.js";
import { $, button, disclosure, element, markFields, status } from "/static/ui.js";

const COLUMNS = 8;
const FIELDS = {
  price: { noun: "price", pattern: /^\d{1,10}(\.\d{1,2})?$/, hint: "a price such as 12.99", send: (value) => value },
  stock: { noun: "stock", pattern: /^\d{1,10}$/, hint: "a whole number, 0 or more", send: (value) => Number(value) },
};

/** Ids of the selected products (rows that leave the table leave the selection). */
export const selected = new Set();

export const products = new LiveTable({
  table: "products-table",
  count: "products-count",
  noun: "product",
  create,
  update,
  removed: (row) => {
    dropNotice(row);
    if (selected.delete(Number(row.dataset.id))) {
      updateBulkBar();
    }
  },
  onChange: () => updateBulkBar(),
});

function cellFor(row, key, label, className) {
  const td = element("td", className);
  if (label) {
    td.dataset.label = label;
  }
  row._cells[key] = td;
  row.append(td);
  return td;
}

function create(item) {
  const id = item.id;
  const row = element("tr");
  row._cells = {};
  const check = element("input", "select-row");
  check.type = "checkbox";
  check.addEventListener("change", () => {
    if (check.checked) {
      selected.add(id);
    } else {
      selected.delete(id);
    }
    row.classList.toggle("selected", check.checked);
    updateBulkBar();
  });
  row._check = check;
  cellFor(row, "select", null, "select").append(check);
  cellFor(row, "sku", "SKU", "sku");
  cellFor(row, "name", "Name", "name");
  cellFor(row, "seller", "Seller", "seller");
  row._editors = { price: editor(row, id, "price"), stock: editor(row, id, "stock") };
  row._unit = element("span", "unit");
  cellFor(row, "price", "Price", "num price").append(row._editors.price, row._unit);
  row._stockPill = element("span", "pill");
  cellFor(row, "stock", "Stock", "num stock").append(row._editors.stock, row._stockPill);
  cellFor(row, "status", "Status", "status");
  const sync = button("Sync", { onClick: () => syncOne(id) });
  const remove = confirming(button("Delete", { className: "button secondary small danger" }), {
    confirmText: "Confirm delete",
    confirmLabel: () => `Confirm delete ${products.items.get(id).sku}`,
    action: () => deleteOne(id),
  });
  row._buttons = { sync, remove };
  cellFor(row, "actions", null, "actions").append(sync, remove);
  return row;
}

function sellerName(product) {
  if (product.seller_id === null || product.seller_id === undefined) {
    return "—";
  }
  const seller = session.sellers && session.sellers.get(product.seller_id);
  return seller ? seller.name : `#${product.seller_id}`;
}

function update(row, item) {
  const cells = row._cells;
  cells.sku.textContent = item.sku;
  cells.name.textContent = item.name;
  cells.seller.textContent = sellerName(item);
  row._unit.textContent = item.currency;
  const low = threshold(item);
  const state = item.stock === 0 ? "out" : low !== null && item.stock <= low ? "low" : "";
  row._stockPill.className = state ? `pill ${state}` : "pill none";
  row._stockPill.textContent = state || "ok"; // takes the room of a pill, unseen: the inputs line up
  const pill = element("span", `pill ${item.status}`, item.status);
  cells.status.replaceChildren(pill);
  if (item.shopify_id) {
    cells.status.append(" ", element("span", "pill store", "in store"));
  }
  row._check.setAttribute("aria-label", `Select ${item.sku}`);
  row._editors.price.setAttribute("aria-label", `Price of ${item.sku}`);
  row._editors.stock.setAttribute("aria-label", `Stock of ${item.sku}`);
  row._buttons.sync.setAttribute("aria-label", `Sync ${item.sku} to the store`);
  if (!row._buttons.remove.classList.contains("danger-armed")) {
    row._buttons.remove.setAttribute("aria-label", `Delete ${item.sku}`);
  }
  for (const field of Object.keys(FIELDS)) {
    follow(row._editors[field], item, field);
  }
  if (row._conflict) {
    row._conflict.refresh(item);
  }
}

// ---- editing in place ---------------------------------------------------------------------------

function editor(row, id, field) {
  const input = element("input", "edit");
  input.name = field;
  input.autocomplete = "off";
  if (field === "stock") {
    input.type = "number";
    input.min = "0";
    input.step = "1";
    input.inputMode = "numeric";
  } else {
    input.inputMode = "decimal";
  }
  input.addEventListener("input", () => {
    // The version this edit starts from: what If-Match will say.
    if (input.dataset.base === undefined) {
      input.dataset.base = String(products.items.get(id).version);
    }
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      commit(row, id, field);
    } else if (event.key === "Escape") {
      revert(row, id, field);
    }
  });
  input.addEventListener("change", () => commit(row, id, field));
  return input;
}

/** Show the item's value, unless someone is typing there or their saved change is still on its way. */
function follow(input, item, field) {
  if (input.dataset.base !== undefined) {
    input.classList.toggle("stale", item.version > Number(input.dataset.base));
    return;
  }
  if (input.dataset.awaiting !== undefined && item.version < Number(input.dataset.awaiting)) {
    return;
  }
  delete input.dataset.awaiting;
  input.classList.remove("stale");
  const value = String(item[field]);
  if (input.value !== value) {
    input.value = value;
  }
}

function sameValue(field, typed, current) {
  return field === "price" ? Number(typed) === Number(current) : Number(typed) === current;
}

async function commit(row, id, field, { overwrite = null } = {}) {
  const input = row._editors[field];
  const item = products.items.get(id);
  if (!item || input.dataset.base === undefined || input.dataset.saving) {
    return;
  }
  const spec = FIELDS[field];
  const value = input.value.trim();
  if (!spec.pattern.test(value)) {
    showProblem(row, id, `The ${spec.noun} of ${item.sku} must be ${spec.hint}. Press Escape to undo.`);
    input.setAttribute("aria-invalid", "true");
    return;
  }
  input.removeAttribute("aria-invalid");
  if (overwrite === null && input.dataset.tried === value) {
    return; // this very value was refused already (Enter, then leaving the field): the notice stands
  }
  if (overwrite === null && sameValue(field, value, item[field])) {
    revert(row, id, field); // nothing to change (maybe someone else already set this very value)
    return;
  }
  input.dataset.saving = "true";
  input.dataset.tried = value;
  input.setAttribute("aria-busy", "true");
  input.readOnly = true;
  try {
    const version = overwrite === null ? Number(input.dataset.base) : overwrite;
    const saved = await api(`/products/${id}`, {
      method: "PATCH",
      token: session.token,
      version,
      body: { [field]: spec.send(value) },
    });
    delete input.dataset.base;
    delete input.dataset.tried;
    input.dataset.awaiting = String(saved.version); // the row changes when the event comes
    dropNotice(row);
    row._conflict = null;
    follow(input, products.items.get(id) || item, field);
  } catch (error) {
    if (error.status === 412) {
      showConflict(row, id, field, value, versionOf(error.etag));
    } else if (error.status === 404) {
      showProblem(row, id, `${item.sku} no longer exists.`);
    } else {
      showProblem(row, id, `The ${spec.noun} of ${item.sku} was not saved: ${error.message}`);
    }
  } finally {
    delete input.dataset.saving;
    input.removeAttribute("aria-busy");
    input.readOnly = false;
  }
}

function revert(row, id, field) {
  const input = row._editors[field];
  delete input.dataset.base;
  delete input.dataset.tried;
  input.removeAttribute("aria-invalid");
  if (row._notice) {
    dropNotice(row);
    row._conflict = null;
  }
  const item = products.items.get(id);
  if (item) {
    follow(input, item, field);
  }
}

/** Someone else changed the product first (412): say what it is now; save anyway, or keep theirs. */
function showConflict(row, id, field, value, serverVersion) {
  const noun = FIELDS[field].noun;
  const td = noticeRow(row, COLUMNS, "conflict");
  const box = element("div", "notice warning");
  box.setAttribute("role", "alert");
  const text = element("p", "notice-text");
  const mine = button("Save mine anyway", {
    className: "button small",
    onClick: () => {
      const current = products.items.get(id);
      const version = Math.max(serverVersion || 0, current ? current.version : 0);
      commit(row, id, field, { overwrite: version });
    },
  });
  const theirs = button("Keep theirs", { onClick: () => revert(row, id, field) });
  box.append(text, element("div", "notice-actions"));
  box.lastChild.append(mine, theirs);
  td.append(box);
  row._conflict = {
    refresh(item) {
      text.textContent =
        `Someone else changed ${item.sku} first: its ${noun} is now ${item[field]}` +
        `${field === "price" ? ` ${item.currency}` : ""}. Your ${noun} ${value} was not saved.`;
      mine.setAttribute("aria-label", `Save mine anyway: ${noun} ${value} for ${item.sku}`);
      theirs.setAttribute("aria-label", `Keep theirs: ${noun} ${item[field]} for ${item.sku}`);
    },
  };
  row._conflict.refresh(products.items.get(id));
}

function showProblem(row, id, message) {
  const td = noticeRow(row, COLUMNS, "problem");
  row._conflict = null;
  const box = element("div", "notice error");
  box.setAttribute("role", "alert");
  box.append(element("p", "notice-text", message));
  const sku = (products.items.get(id) || {}).sku || "";
  box.append(button("Dismiss", { label: `Dismiss the message about ${sku}`, onClick: () => dropNotice(row) }));
  td.append(box);
}

// ---- single-product actions ---------------------------------------------------------------------

async function syncOne(id) {
  const sku = products.items.get(id).sku;
  try {
    await api(`/products/${id}/sync`, { method: "POST", token: session.token });
    status("products-status", `${sku} was pushed to the store.`);
  } catch (error) {
    status("products-status", `${sku} was not pushed to the store: ${error.message}`, "error");
  }
}

async function deleteOne(id) {
  const sku = products.items.get(id).sku;
  try {
    await api(`/products/${id}`, { method: "DELETE", token: session.token });
    status("products-status", `${sku} was deleted.`);
  } catch (error) {
    status("products-status", `${sku} was not deleted: ${error.message}`, "error");
  }
}

// ---- selection and bulk operations --------------------------------------------------------------

const BULK = {
  "price-set": { value: "price", run: (ids, value) => priceUpdate(ids, "set", value), done: (n) => `Price set for ${n}.` },
  "price-percent": { value: "percent", run: (ids, value) => priceUpdate(ids, "percent", value), done: (n) => `Price changed for ${n}.` },
  "price-delta": { value: "amount", run: (ids, value) => priceUpdate(ids, "delta", value), done: (n) => `Price changed for ${n}.` },
  "stock-set": {
    value: "stock",
    run: (ids, value) =>
      api("/products/bulk/stock-update", {
        method: "POST",
        token: session.token,
        body: { items: ids.map((id) => ({ product_id: id, stock: Number(value) })) },
      }),
    done: (n) => `Stock set for ${n}.`,
  },
  sync: {
    value: null,
    run: (ids) => api("/products/bulk/sync-shopify", { method: "POST", token: session.token, body: { product_ids: ids } }),
    done: (n, answer) =>
      answer.failed
        ? `${answer.synced} of ${answer.total} pushed to the store; not pushed: ${answer.items
            .filter((item) => !item.ok)
            .map((item) => `${item.sku} (${item.error})`)
            .join(", ")}.`
        : `${n} pushed to the store.`,
  },
  delete: {
    value: null,
    confirm: true,
    run: (ids) => api("/products/bulk/delete", { method: "POST", token: session.token, body: { product_ids: ids } }),
    done: (n) => `${n} deleted.`,
  },
};

function priceUpdate(ids, mode, value) {
  return api("/products/bulk/price-update", {
    method: "POST",
    token: session.token,
    body: { product_ids: ids, mode, value: value.trim() },
  });
}

function plural(count) {
  return `${count} product${count === 1 ? "" : "s"}`;
}

let bulkArmed = null;

export function updateBulkBar() {
  const count = selected.size;
  const shown = products.rows.size;
  const all = $("select-all");
  all.checked = count > 0 && count === shown;
  all.indeterminate = count > 0 && count < shown;
  $("selected-count").textContent = count ? `${count} selected` : "Select all";
  const action = BULK[$("bulk-action").value];
  $("bulk-action").disabled = count === 0;
  $("bulk-value").disabled = count === 0 || !action.value;
  $("bulk-value").placeholder = action.value || "no value needed";
  $("bulk-apply").disabled = count === 0;
  disarmBulk();
}

function disarmBulk() {
  clearTimeout(bulkArmed);
  bulkArmed = null;
  const apply = $("bulk-apply");
  apply.textContent = "Apply";
  apply.removeAttribute("aria-label");
  apply.classList.remove("danger-armed");
}

async function applyBulk() {
  const key = $("bulk-action").value;
  const action = BULK[key];
  const ids = [...selected].sort((a, b) => a - b);
  if (!ids.length) {
    return;
  }
  const value = $("bulk-value").value.trim();
  if (action.value && !value) {
    status("products-status", `Enter the ${action.value} to apply.`, "error");
    $("bulk-value").focus();
    return;
  }
  if (action.confirm && !bulkArmed) {
    const apply = $("bulk-apply");
    apply.textContent = "Confirm delete";
    apply.setAttribute("aria-label", `Confirm delete ${plural(ids.length)}`);
    apply.classList.add("danger-armed");
    bulkArmed = setTimeout(disarmBulk, 4000);
    return;
  }
  disarmBulk();
  $("bulk-apply").disabled = true;
  try {
    const answer = await action.run(ids, value);
    status("products-status", action.done(plural(ids.length), answer), answer && answer.failed ? "error" : "ok");
    $("bulk-value").value = "";
    clearSelection();
  } catch (error) {
    status("products-status", `Nothing was changed: ${error.message}`, "error");
  } finally {
    updateBulkBar();
  }
}

export function clearSelection() {
  selected.clear();
  for (const row of products.rows.values()) {
    row._check.checked = false;
    row.classList.remove("selected");
  }
  updateBulkBar();
}

$("select-all").addEventListener("change", (event) => {
  const on = event.target.checked;
  for (const [id, row] of products.rows) {
    row._check.checked = on;
    row.classList.toggle("selected", on);
    if (on) {
      selected.add(id);
    } else {
      selected.delete(id);
    }
  }
  updateBulkBar();
});
$("bulk-action").addEventListener("change", updateBulkBar);
$("bulk-apply").addEventListener("click", applyBulk);
$("bulk-value").addEventListener("keydown", (event) => {
  if (event.key === "Enter") {
    applyBulk();
  }
});

// ---- adding a product ---------------------------------------------------------------------------

export function refreshSellerChoices() {
  const select = $("new-seller");
  const chosen = select.value;
  const options = [element("option", null, "None")];
  options[0].value = "";
  const sellers = session.sellers ? [...session.sellers.values()].sort((a, b) => a.name.localeCompare(b.name)) : [];
  for (const seller of sellers) {
    const option = element("option", null, seller.name);
    option.value = String(seller.id);
    options.push(option);
  }
  select.replaceChildren(...options);
  select.value = sellers.some((seller) => String(seller.id) === chosen) ? chosen : "";
}

const closeProductForm = disclosure("product-add-toggle", "product-form", "new-sku");

$("product-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const fields = form.elements;
  const body = {
    sku: fields.sku.value.trim(),
    name: fields.name.value.trim(),
    price: fields.price.value.trim(),
    stock: fields.stock.value === "" ? 0 : Number(fields.stock.value),
    seller_id: fields.seller_id.value ? Number(fields.seller_id.value) : null,
  };
  const error = form.querySelector("[data-error]");
  const missing = ["sku", "name", "price"].filter((name) => !body[name]);
  if (missing.length) {
    error.textContent = `Enter the ${missing.join(", ").replace("sku", "SKU")}.`;
    fields[missing[0]].focus();
    return;
  }
  error.textContent = "";
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    await api("/products", { method: "POST", token: session.token, body });
    form.reset();
    markFields(form, {});
    closeProductForm();
    status("products-status", `${body.sku} was added.`); // its row comes with the product_added event
    $("product-add-toggle").focus();
  } catch (failure) {
    error.textContent = markFields(form, failure);
  } finally {
    submit.disabled = false;
  }
});
