import { MantineProvider } from "@mantine/core";
import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { MemoryRouter } from "react-router-dom";
import { AuthProvider } from "../auth/context";
import type { Role, Session } from "../auth/session";
import type { ConsoleConfig } from "../config";
import "../i18n";
import i18n from "../i18n";

export const CONFIG: ConsoleConfig = {
  apiBase: "",
  auth: { mode: "password", cognitoEndpoint: "/__devstack/cognito", clientId: "client-1", region: "eu-west-1" },
};

function b64url(o: unknown): string {
  return btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

/** An unsigned JWT with the claims Cognito puts in a staff id token (the console never verifies). */
export function idToken(roles: Role[], extra: Record<string, unknown> = {}): string {
  const claims = {
    sub: "u-1",
    email: `${roles[0] ?? "nobody"}@demo.local`,
    "cognito:groups": roles,
    exp: Math.floor(Date.now() / 1000) + 3600,
    ...extra,
  };
  return `${b64url({ alg: "RS256" })}.${b64url(claims)}.sig`;
}

export function session(roles: Role[], storeId?: string): Session {
  return {
    idToken: idToken(roles, storeId ? { "custom:store_id": storeId } : {}),
    expiresAt: Date.now() + 3600_000,
    email: `${roles[0]}@demo.local`,
    roles,
    storeId,
  };
}

export type Call = { method: string; url: string; body: unknown; headers: Record<string, string> };

/** A fetch that answers by "METHOD /path" (query ignored unless given) and records every call. */
export function fakeFetch(routes: Record<string, (call: Call) => [number, unknown]>) {
  const calls: Call[] = [];
  const impl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const method = init?.method ?? "GET";
    const call: Call = {
      method,
      url,
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
      headers: (init?.headers ?? {}) as Record<string, string>,
    };
    calls.push(call);
    const path = url.split("?")[0];
    const handler = routes[`${method} ${url}`] ?? routes[`${method} ${path}`];
    const [status, body] = handler ? handler(call) : [404, { error: { code: "route_not_found", message: "no route" } }];
    return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  }) as typeof fetch;
  return { impl, calls };
}

export function renderApp(ui: ReactElement, opts: { session?: Session | null; path?: string; fetchImpl?: typeof fetch; lang?: string } = {}) {
  void i18n.changeLanguage(opts.lang ?? "en");
  return render(
    <MantineProvider>
      <MemoryRouter initialEntries={[opts.path ?? "/"]}>
        <AuthProvider config={CONFIG} initial={opts.session ?? null} fetchImpl={opts.fetchImpl}>
          {ui}
        </AuthProvider>
      </MemoryRouter>
    </MantineProvider>,
  );
}
