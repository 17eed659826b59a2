/** AWS sign-in: the Cognito hosted UI, OAuth 2.0 authorization code flow with PKCE, by
 * oidc-client-ts. Settings come from config.json; no secret exists (a public client). */
import { UserManager, WebStorageStateStore } from "oidc-client-ts";
import type { OidcAuth } from "../config";
import { sessionFromTokens, type Session } from "./session";

let manager: UserManager | null = null;

export function userManager(auth: OidcAuth): UserManager {
  if (!manager) {
    const base = `${window.location.origin}${import.meta.env.BASE_URL}`;
    manager = new UserManager({
      authority: auth.authority,
      client_id: auth.clientId,
      redirect_uri: `${base}callback`,
      post_logout_redirect_uri: base,
      response_type: "code",
      scope: auth.scope ?? "openid email profile",
      userStore: new WebStorageStateStore({ store: window.sessionStorage }),
      automaticSilentRenew: false,
    });
  }
  return manager;
}

export async function oidcSignIn(auth: OidcAuth): Promise<void> {
  await userManager(auth).signinRedirect();
}

export async function oidcCallback(auth: OidcAuth): Promise<Session> {
  const user = await userManager(auth).signinRedirectCallback();
  if (!user.id_token) throw new Error("no id token");
  return sessionFromTokens(user.id_token, user.access_token);
}

export async function oidcSignOut(auth: OidcAuth): Promise<void> {
  const um = userManager(auth);
  await um.removeUser();
  if (auth.domain) {
    // Cognito's logout endpoint takes client_id + logout_uri rather than the OIDC end-session form.
    const logout = new URL("/logout", auth.domain);
    logout.searchParams.set("client_id", auth.clientId);
    logout.searchParams.set("logout_uri", `${window.location.origin}${import.meta.env.BASE_URL}`);
    window.location.assign(logout.toString());
  }
}
