/** What the dashboard's modules share: the signed-in token and the user's settings. */

export const session = {
  /** The bearer token of the signed-in user (null when signed out). */
  token: null,
  /** The user's settings as the last `settings_updated` event (or the first load) gave them. */
  settings: { low_stock_threshold: 5, default_markup_percent: "30.00", currency: "USD", store: { connected: false } },
};

/** The threshold a product's stock is "low" at: its own, else the user's setting. */
export function threshold(product) {
  return product.low_stock_threshold === null || product.low_stock_threshold === undefined
    ? session.settings.low_stock_threshold
    : product.low_stock_threshold;
}
