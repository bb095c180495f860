/**
 * The sellers table: add a seller, and import a seller's product feed (the products it creates or
 * changes arrive as events, like any other change).
 */

import { api } from "/static/api.js";
import { session } from "/static/session.js";
import { LiveTable } from "/static/tables.js";
import { $, button, disclosure, element, markFields, status } from "/static/ui.js";

export function createSellers(onChange) {
  const sellers = new LiveTable({
    table: "sellers-table",
    count: "sellers-count",
    noun: "seller",
    create,
    update,
    onChange,
  });

  function create(item) {
    const row = element("tr");
    row._cells = {};
    for (const [key, label, className] of [
      ["name", "Name", "name"],
      ["email", "Email", "email"],
      ["feed", "Feed", "feed"],
      ["actions", null, "actions"],
    ]) {
      const td = element("td", className);
      if (label) {
        td.dataset.label = label;
      }
      row._cells[key] = td;
      row.append(td);
    }
    row._import = button("Import feed", { onClick: () => importFeed(item.id) });
    row._cells.actions.append(row._import);
    return row;
  }

  function update(row, seller) {
    const cells = row._cells;
    cells.name.replaceChildren(seller.name);
    if (seller.notes) {
      cells.name.append(element("span", "sub", seller.notes));
    }
    cells.email.textContent = seller.email || "—";
    cells.feed.textContent = seller.feed_url ? seller.feed_url.replace(/^https?:\/\//, "") : "—";
    cells.feed.title = seller.feed_url || "";
    row._import.hidden = !seller.feed_url;
    row._import.setAttribute("aria-label", `Import feed of ${seller.name}`);
  }

  async function importFeed(id) {
    const seller = sellers.items.get(id);
    const row = sellers.rows.get(id);
    row._import.disabled = true;
    status("sellers-status", `Importing the feed of ${seller.name}…`);
    try {
      const answer = await api(`/sellers/${id}/fetch-products`, { method: "POST", token: session.token });
      status(
        "sellers-status",
        `${seller.name}'s feed: ${answer.added} added, ${answer.updated} updated, ${answer.unchanged} unchanged.`,
      );
    } catch (error) {
      status("sellers-status", `${seller.name}'s feed was not imported: ${error.message}`, "error");
    } finally {
      row._import.disabled = false;
    }
  }

  const closeForm = disclosure("seller-add-toggle", "seller-form", "new-seller-name");
  $("seller-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const fields = form.elements;
    const error = form.querySelector("[data-error]");
    const body = { name: fields.name.value.trim() };
    if (fields.email.value.trim()) {
      body.email = fields.email.value.trim();
    }
    if (fields.feed_url.value.trim()) {
      body.feed_url = fields.feed_url.value.trim();
    }
    if (!body.name) {
      error.textContent = "Enter the seller's name.";
      fields.name.focus();
      return;
    }
    error.textContent = "";
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      await api("/sellers", { method: "POST", token: session.token, body });
      form.reset();
      markFields(form, {});
      closeForm();
      status("sellers-status", `${body.name} was added.`);
      $("seller-add-toggle").focus();
    } catch (failure) {
      error.textContent = markFields(form, failure);
    } finally {
      submit.disabled = false;
    }
  });

  return sellers;
}
