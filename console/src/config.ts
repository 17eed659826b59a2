/** Runtime settings, read from `config.json` next to index.html: never compiled into the bundle. */

export type PasswordAuth = {
  mode: "password";
  /** Cognito's JSON API (InitiateAuth), same origin locally: e.g. /__devstack/cognito */
  cognitoEndpoint: string;
  clientId: string;
  region?: string;
};

export type OidcAuth = {
  mode: "oidc";
  /** https://cognito-idp.<region>.amazonaws.com/<pool id> */
  authority: string;
  clientId: string;
  /** The hosted UI domain, for sign-out: https://<prefix>.auth.<region>.amazoncognito.com */
  domain?: string;
  region?: string;
  scope?: string;
};

export type ConsoleConfig = {
  auth: PasswordAuth | OidcAuth;
  /** Where the API is: "" = the same origin (locally and behind CloudFront). */
  apiBase: string;
};

export class ConfigError extends Error {}

export function parseConfig(raw: unknown): ConsoleConfig {
  if (typeof raw !== "object" || raw === null) throw new ConfigError("config.json is not an object");
  const doc = raw as Record<string, unknown>;
  const auth = doc.auth as Record<string, unknown> | undefined;
  const apiBase = typeof doc.apiBase === "string" ? doc.apiBase.replace(/\/$/, "") : "";
  if (!auth) throw new ConfigError("config.json: auth is required");
  if (auth.mode === "password" && typeof auth.cognitoEndpoint === "string") {
    // An empty clientId: the stack has no staff pool yet; the page loads, sign-in says so.
    return { apiBase, auth: { ...(auth as unknown as PasswordAuth), clientId: String(auth.clientId ?? "") } };
  }
  if (auth.mode === "oidc" && typeof auth.authority === "string") {
    if (typeof auth.clientId !== "string" || !auth.clientId) throw new ConfigError("config.json: auth.clientId is required");
    return { apiBase, auth: auth as unknown as OidcAuth };
  }
  throw new ConfigError(`config.json: unknown auth mode ${String(auth.mode)}`);
}

export async function loadConfig(fetchImpl: typeof fetch = fetch): Promise<ConsoleConfig> {
  const resp = await fetchImpl(`${import.meta.env.BASE_URL}config.json`, { cache: "no-store" });
  if (!resp.ok) throw new ConfigError(`config.json: HTTP ${resp.status}`);
  return parseConfig(await resp.json());
}
