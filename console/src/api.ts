/** The loyalty API, called with the staff member's token. 401 = the session is over (sign in
 * again); 403 = this role may not do it; other errors carry the API's `error.code`. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type ApiClient = {
  get<T>(path: string, query?: Record<string, string | undefined>): Promise<T>;
  post<T>(path: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
  del<T>(path: string): Promise<T>;
};

export function createApi(
  base: string,
  token: () => string | null,
  onUnauthorized: () => void,
  fetchImpl: typeof fetch = (...args) => fetch(...args),
): ApiClient {
  async function call<T>(method: string, path: string, body?: unknown, extra?: Record<string, string>): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json", ...extra };
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let resp: Response;
    try {
      resp = await fetchImpl(`${base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "network", "network error");
    }
    const text = await resp.text();
    let doc: unknown = null;
    try {
      doc = text ? JSON.parse(text) : null;
    } catch {
      doc = null;
    }
    if (!resp.ok) {
      const err = (doc as { error?: { code?: string; message?: string }; message?: string } | null) ?? {};
      const code = err.error?.code ?? (resp.status === 401 ? "unauthorized" : resp.status === 403 ? "forbidden" : `http_${resp.status}`);
      const message = err.error?.message ?? err.message ?? resp.statusText;
      if (resp.status === 401) onUnauthorized();
      throw new ApiError(resp.status, code, message);
    }
    return doc as T;
  }
  return {
    get: (path, query) => {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== "") q.set(k, v);
      const qs = q.toString();
      return call("GET", qs ? `${path}?${qs}` : path);
    },
    post: (path, body, headers) => call("POST", path, body, headers),
    del: (path) => call("DELETE", path),
  };
}

export const enc = encodeURIComponent;
