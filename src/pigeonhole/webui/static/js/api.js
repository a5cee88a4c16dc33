// Talking to the server: the API key, JSON calls, uploads with progress, and
// readable messages for every error the server (or the network) can give.

export const API = "/api/v1";
// The web UI's own read-only helpers (models, evaluation), beside the API.
export const UI_API = "/ui/api";
const KEY_STORE = "pigeonhole.apiKey";

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code || "";
  }
}

export function getKey() {
  return localStorage.getItem(KEY_STORE) || "";
}

export function setKey(key) {
  if (key) localStorage.setItem(KEY_STORE, key.trim());
  else localStorage.removeItem(KEY_STORE);
}

// Moves ?api_key=KEY from the address bar into storage, so it is not left in
// the history or shown on screen.
export function takeKeyFromUrl() {
  const params = new URLSearchParams(location.search);
  const key = params.get("api_key");
  if (!key) return;
  setKey(key);
  params.delete("api_key");
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? `?${query}` : "") + location.hash);
}

// The message a person should read for an error response.
export function messageOf(status, data) {
  if (data && typeof data.message === "string") return data.message;
  if (data && typeof data.detail === "string") return data.detail;
  if (data && Array.isArray(data.detail)) {
    return data.detail
      .map((item) => `${(item.loc || []).filter((part) => part !== "body").join(".")}: ${item.msg}`)
      .join("; ");
  }
  if (status === 404) return "not found: this server has no such route or item";
  if (status >= 500) return `the server failed (HTTP ${status}); its log has the details`;
  return `the server refused the request (HTTP ${status})`;
}

function parse(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

function authHeaders() {
  const key = getKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

export async function api(path, { method = "GET", json, body, signal, base = API } = {}) {
  const headers = authHeaders();
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(base + path, { method, headers, body, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "could not reach the server; check that `pigeonhole serve` is still running");
  }
  const data = parse(await response.text());
  if (!response.ok) {
    throw new ApiError(response.status, messageOf(response.status, data), data && data.code);
  }
  return data;
}

// Sends a multipart form with XMLHttpRequest, whose upload events give progress.
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", API + path);
    for (const [name, value] of Object.entries(authHeaders())) {
      request.setRequestHeader(name, value);
    }
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    };
    request.onload = () => {
      const data = parse(request.responseText);
      if (request.status >= 200 && request.status < 300) resolve(data);
      else reject(new ApiError(request.status, messageOf(request.status, data), data && data.code));
    };
    request.onerror = () =>
      reject(new ApiError(0, "the upload was cut off; check that the server is still running"));
    request.send(form);
  });
}

// A URL for <img src>: images cannot send headers, so the key goes in the query.
export function fileUrl(path, params = {}, base = API) {
  const query = new URLSearchParams({ ...params, api_key: getKey() });
  return `${base}${path}?${query}`;
}

// The path of a project, with its slug escaped.
export function projectPath(slug, rest = "") {
  return `/projects/${encodeURIComponent(slug)}${rest}`;
}
