/**
 * The REST API as the dashboard calls it: JSON in and out, the bearer token, `If-Match`, and
 * errors people can read (`ApiError.message` names the bad fields, not only the status).
 */

export class ApiError extends Error {
  /**
   * @param {number} status the HTTP status (0: the server could not be reached)
   * @param {string} message readable: the server's detail and the bad fields it names
   * @param {object} [more] `etag` (the current one, on 412), `retryAfter`, `fields` ({key: message})
   */
  constructor(status, message, more = {}) {
    super(message);
    this.status = status;
    this.etag = more.etag || null;
    this.retryAfter = more.retryAfter || null;
    this.fields = more.fields || {};
  }
}

/** `"v3"` → 3 (null when the tag is not one of ours). */
export function versionOf(etag) {
  const match = /^(?:W\/)?"v(\d+)"$/.exec(etag || "");
  return match ? Number(match[1]) : null;
}

/** The readable message of an error answer: the detail, then each bad field. */
function describe(status, data, statusText) {
  const detail = data && typeof data.detail === "string" ? data.detail : statusText || `HTTP ${status}`;
  const fields = {};
  if (data && Array.isArray(data.extra)) {
    for (const item of data.extra) {
      if (item && item.key && item.message) {
        fields[item.key] = item.message;
      }
    }
  }
  const named = Object.entries(fields).map(([key, message]) => `${key}: ${message}`);
  // "Validation failed for PATCH /products/3" says less than the fields themselves.
  const generic = /^Validation failed for /.test(detail);
  const message = named.length ? (generic ? named.join("; ") : `${detail} (${named.join("; ")})`) : detail;
  return { message, fields };
}

/**
 * Call the API. Returns the JSON body (null for 204). Throws {@link ApiError}.
 * @param {string} path
 * @param {{method?: string, body?: unknown, token?: string|null, version?: number|null}} [options]
 *   `version`: send `If-Match: "v<version>"`, so the change applies only if nobody changed it since.
 */
export async function api(path, { method = "GET", body, token, version } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  if (token) {
    headers.Authorization = "Bearer " + token;
  }
  if (version !== undefined && version !== null) {
    headers["If-Match"] = `"v${version}"`;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, "The server cannot be reached.");
  }
  if (response.status === 204) {
    return null;
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const { message, fields } = describe(response.status, data, response.statusText);
    throw new ApiError(response.status, message, {
      etag: response.headers.get("ETag"),
      retryAfter: response.headers.get("Retry-After"),
      fields,
    });
  }
  return data;
}

/** The newest `limit` items of a list (the API lists oldest first). */
export async function newest(path, token, limit) {
  const first = await api(`${path}?limit=${limit}`, { token });
  if (first.total <= limit) {
    return first;
  }
  return api(`${path}?limit=${limit}&offset=${first.total - limit}`, { token });
}
