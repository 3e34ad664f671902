// Admin API client: bearer token handling and RFC 7807 problem parsing.

const TOKEN_KEY = 'tandem.adminToken';

/** Moves `#token=…` from the address bar into sessionStorage. */
export function adoptTokenFromUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token');
  if (!token) return;
  setToken(token);
  params.delete('token');
  const rest = params.toString();
  history.replaceState(history.state, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor({ status, title, detail, code, correlationId }) {
    super([title, detail].filter(Boolean).join(': ') || `HTTP ${status}`);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.code = code;
    this.correlationId = correlationId;
  }

  get isAuthProblem() {
    return this.status === 401 || this.status === 403;
  }
}

/** Sends an admin request; resolves to the parsed JSON body (or null), throws ApiError. */
export async function adminRequest(method, path, body) {
  const headers = { Accept: 'application/json, application/problem+json' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';

  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError({ status: 0, title: 'Request failed', detail: error.message });
  }

  const payload = await readJson(response);
  if (response.ok) return payload;
  throw new ApiError({
    status: response.status,
    title: payload?.title ?? response.statusText ?? 'Request failed',
    detail: payload?.detail ?? (payload ? undefined : `HTTP ${response.status}`),
    code: payload?.code,
    correlationId: payload?.correlationId,
  });
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
