// Talking to the server: the HTTP API (docs/http-api.md) and the session token.

import { state } from './state.js';

const FETCH_TIMEOUT_MS = 30000;
export const NOT_SIGNED_IN = 'Not signed in: open the URL `alecton dashboard` printed';

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** The overview's and the live stream's scope: every namespace the caller may list, or one. */
export function scope() {
  return state.all ? { allNamespaces: 'true' } : {};
}

/** Path plus query; `namespace=` is added when one is chosen (`params.namespace` names
 * another), never a token. */
export function apiUrl(path, params = {}) {
  const query = new URLSearchParams();
  if (state.ns) query.set('namespace', state.ns);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

// `alecton dashboard` prints a URL with its token in the fragment, which no browser sends
// to a server. It is kept in localStorage (this origin only: scheme, host and port) and
// sent as a header, never as a cookie (cookies would reach every port of 127.0.0.1).
// Behind an authenticating proxy there is no token here: the proxy adds the header.
const TOKEN_KEY = 'alecton-dashboard-token';

export function takeTokenFromUrl() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get('token');
  if (!token) return;
  localStorage.setItem(TOKEN_KEY, token);
  fragment.delete('token');
  const rest = fragment.toString();
  history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
}

export function authHeaders() {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** fetch + JSON; non-2xx becomes an ApiError carrying the server's `error` words. */
export async function api(method, path, { params, body } = {}) {
  const init = { method, headers: authHeaders(), credentials: 'same-origin', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(apiUrl(path, params), init);
  } catch (err) {
    const timedOut = err && (err.name === 'TimeoutError' || err.name === 'AbortError');
    throw new ApiError(timedOut ? 'The server did not answer within 30 s.' : 'Cannot reach the server.', 0);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null; // an empty or non-JSON answer: the status code still tells
  }
  if (response.status === 401) throw new ApiError(NOT_SIGNED_IN, 401);
  if (!response.ok) {
    const words = data && typeof data.error === 'string' && data.error ? data.error : response.statusText;
    throw new ApiError(words || `HTTP ${response.status}`, response.status);
  }
  return data;
}

/** One path segment, escaped (names come from the server or the person). */
export const seg = encodeURIComponent;
