/**
 * The settings form: filled from the user's settings and from every `settings_updated` event (a
 * field someone is editing keeps their value); saving sends only the fields they changed.
 */

import { api } from "/static/api.js";
import { session } from "/static/session.js";
import { $, markFields, status } from "/static/ui.js";

const form = $("settings-form");
const FIELDS = {
  low_stock_threshold: (s) => String(s.low_stock_threshold),
  default_markup_percent: (s) => String(s.default_markup_percent),
  currency: (s) => s.currency,
  shopify_domain: (s) => (s.store && s.store.shopify_domain) || "",
};

/** Show `settings` in the form, except in the fields being edited. */
export function showSettings(settings) {
  for (const [name, read] of Object.entries(FIELDS)) {
    const input = form.elements.namedItem(name);
    if (!input.dataset.dirty) {
      input.value = read(settings);
    }
  }
  const connected = settings.store && settings.store.connected;
  $("store-state").textContent = connected ? `store: ${settings.store.shopify_domain}` : "store: local";
}

for (const input of form.querySelectorAll("input")) {
  input.addEventListener("input", () => {
    input.dataset.dirty = "true";
  });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = form.querySelector("[data-error]");
  const body = {};
  const fields = form.elements;
  if (fields.low_stock_threshold.dataset.dirty) {
    const value = fields.low_stock_threshold.value.trim();
    body.low_stock_threshold = /^\d+$/.test(value) ? Number(value) : value;
  }
  for (const name of ["default_markup_percent", "currency"]) {
    if (fields[name].dataset.dirty) {
      body[name] = fields[name].value.trim();
    }
  }
  const store = {};
  if (fields.shopify_domain.dataset.dirty) {
    store.shopify_domain = fields.shopify_domain.value.trim() || null;
  }
  if (fields.shopify_access_token.value) {
    store.shopify_access_token = fields.shopify_access_token.value;
  }
  if (Object.keys(store).length) {
    body.store = store;
  }
  if (!Object.keys(body).length) {
    status("settings-status", "Nothing to save: no setting was changed.");
    return;
  }
  error.textContent = "";
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    await api("/settings", { method: "PATCH", token: session.token, body });
    for (const input of form.querySelectorAll("input")) {
      delete input.dataset.dirty; // the settings_updated event fills the form from here on
    }
    fields.shopify_access_token.value = "";
    markFields(form, {});
    status("settings-status", "Settings saved.");
  } catch (failure) {
    error.textContent = markFields(form, {
      ...failure,
      message: failure.message,
      fields: Object.fromEntries(Object.entries(failure.fields || {}).map(([key, text]) => [key.replace(/^store\./, ""), text])),
    });
  } finally {
    submit.disabled = false;
  }
});

/** Forget edits in progress (signing out). */
export function resetSettingsForm() {
  form.reset();
  for (const input of form.querySelectorAll("input")) {
    delete input.dataset.dirty;
    input.removeAttribute("aria-invalid");
  }
  form.querySelector("[data-error]").textContent = "";
}
