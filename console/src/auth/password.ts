/** Local sign-in: Cognito's InitiateAuth (USER_PASSWORD_AUTH) against the emulator's pool,
 * proxied same-origin by the local stack. In AWS the hosted UI is used instead (oidc.ts). */
import type { PasswordAuth } from "../config";
import { sessionFromTokens, type Session } from "./session";

export class SignInError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export async function passwordSignIn(
  auth: PasswordAuth,
  username: string,
  password: string,
  fetchImpl: typeof fetch = fetch,
): Promise<Session> {
  if (!auth.clientId) throw new SignInError("this stack has no staff user pool", "NotConfigured");
  const resp = await fetchImpl(auth.cognitoEndpoint, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
    },
    body: JSON.stringify({
      AuthFlow: "USER_PASSWORD_AUTH",
      ClientId: auth.clientId,
      AuthParameters: { USERNAME: username, PASSWORD: password },
    }),
  });
  const body = (await resp.json().catch(() => ({}))) as Record<string, unknown>;
  if (!resp.ok) {
    const type = String(body.__type ?? body.code ?? "Error").split("#").pop() ?? "Error";
    throw new SignInError(String(body.message ?? body.Message ?? type), type);
  }
  const result = body.AuthenticationResult as Record<string, string> | undefined;
  if (!result?.IdToken) {
    throw new SignInError(String(body.ChallengeName ?? "no tokens"), "ChallengeRequired");
  }
  return sessionFromTokens(result.IdToken, result.AccessToken);
}
