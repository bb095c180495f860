/**
 * Live tables: rows keyed by id, newest first, changed in place by events.
 *
 * A row is built once (`create`) and then updated in place (`update`), so an input someone is
 * typing in, or a button that has the focus, survives the events that change the rest of the row.
 * A row never goes back to an older `version`: an event the loaded list already reflects changes
 * nothing.
 */

import { $, element, flash } from "/static/ui.js";

export const MAX_ROWS = 100;

export class LiveTable {
  /**
   * @param {object} spec
   * @param {string} spec.table the table's id
   * @param {string} spec.count the id of the element that shows the count
   * @param {string} spec.noun "product": row ids are `product-<id>`
   * @param {(item: object) => HTMLTableRowElement} spec.create a new row for `item`
   * @param {(row: HTMLTableRowElement, item: object, before: object|undefined) => void} spec.update
   * @param {(row: HTMLTableRowElement) => void} [spec.removed] a row left the table
   * @param {() => void} [spec.onChange] something in the table changed
   */
  constructor({ table, count, noun, create, update, removed, onChange }) {
    this.table = $(table);
    this.tbody = this.table.tBodies[0];
    this.count = $(count);
    this.noun = noun;
    this.create = create;
    this.update = update;
    this.removed = removed || (() => {});
    this.onChange = onChange || (() => {});
    this.items = new Map();
    this.rows = new Map();
    this.total = null;
    this.columns = this.table.tHead.rows[0].cells.length;
    this.showEmpty("Loading…");
  }

  showEmpty(text) {
    for (const row of this.rows.values()) {
      this.removed(row);
    }
    this.tbody.replaceChildren();
    const row = element("tr", "empty-row");
    const td = element("td", "empty", text);
    td.colSpan = this.columns;
    row.append(td);
    this.tbody.append(row);
  }

  clear() {
    this.showEmpty("Loading…");
    this.items.clear();
    this.rows.clear();
    this.total = null;
    this.count.textContent = "";
  }

  replaceAll(page) {
    for (const row of this.rows.values()) {
      this.removed(row);
    }
    this.items.clear();
    this.rows.clear();
    this.tbody.replaceChildren();
    const sorted = page.items.slice().sort((a, b) => b.id - a.id);
    for (const item of sorted) {
      this.items.set(item.id, item);
      const row = this.build(item);
      this.rows.set(item.id, row);
      this.tbody.append(row);
    }
    this.total = page.total;
    this.updateCount();
    this.onChange();
  }

  build(item) {
    const row = this.create(item);
    row.id = `${this.noun}-${item.id}`;
    row.dataset.id = String(item.id);
    row.dataset.version = item.version === undefined ? "" : String(item.version);
    this.update(row, item, undefined);
    return row;
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
      row.dataset.version = merged.version === undefined ? "" : String(merged.version);
      this.update(row, merged, known);
    } else {
      row = this.build(merged);
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
    this.removed(row);
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
      const item = this.items.get(id);
      this.update(row, item, item);
    }
  }

  highlight(id) {
    const row = this.rows.get(id);
    if (row) {
      flash(row);
    }
  }

  insertInOrder(row, id) {
    const placeholder = this.tbody.querySelector("tr.empty-row");
    if (placeholder) {
      placeholder.remove();
    }
    // Newest first: before the first older row (a row's notice row stays right after it).
    for (const other of this.tbody.rows) {
      if (other !== row && other.dataset.id && Number(other.dataset.id) < id) {
        this.tbody.insertBefore(row, other);
        return;
      }
    }
    this.tbody.append(row);
  }

  trim() {
    while (this.rows.size > MAX_ROWS) {
      const oldest = Math.min(...this.rows.keys());
      const row = this.rows.get(oldest);
      this.removed(row);
      row.remove();
      this.rows.delete(oldest);
      this.items.delete(oldest);
    }
  }

  updateCount() {
    const shown = this.rows.size;
    if (shown === 0 && this.total !== null) {
      this.showEmpty(`No ${this.noun}s yet.`);
    }
    this.count.textContent =
      this.total === null ? "" : shown < this.total ? `newest ${shown} of ${this.total}` : `${this.total}`;
  }
}

/** A full-width row under `row` for a message or a small form (a conflict, a shipment). */
export function noticeRow(row, columns, className) {
  dropNotice(row);
  const notice = element("tr", `notice-row ${className || ""}`.trim());
  notice.dataset.for = row.id;
  const td = element("td");
  td.colSpan = columns;
  notice.append(td);
  row.after(notice);
  row._notice = notice;
  return td;
}

export function dropNotice(row) {
  if (row._notice) {
    row._notice.remove();
    row._notice = null;
  }
}

/**
 * A button that asks once more ("Confirm delete") before `action`; it settles back after 4 s.
 * `confirmLabel` may be a function, asked when the button arms (names change while it waits).
 */
export function confirming(node, { confirmText, confirmLabel, action }) {
  let armed = null;
  let text = "";
  let label = null;
  const settle = () => {
    clearTimeout(armed);
    armed = null;
    node.textContent = text;
    if (label === null) {
      node.removeAttribute("aria-label");
    } else {
      node.setAttribute("aria-label", label);
    }
    node.classList.remove("danger-armed");
  };
  node.addEventListener("click", () => {
    if (!armed) {
      text = node.textContent;
      label = node.getAttribute("aria-label");
      node.textContent = confirmText;
      node.setAttribute("aria-label", typeof confirmLabel === "function" ? confirmLabel() : confirmLabel);
      node.classList.add("danger-armed");
      armed = setTimeout(settle, 4000);
      return;
    }
    settle();
    action();
  });
  return node;
}
