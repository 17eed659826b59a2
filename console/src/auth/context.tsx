import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";
import { createApi, type ApiClient } from "../api";
import type { ConsoleConfig } from "../config";
import { loadSession, saveSession, type Session } from "./session";

type AuthState = {
  config: ConsoleConfig;
  session: Session | null;
  /** true when the last session ended because the API answered 401 or it expired */
  expired: boolean;
  signIn(session: Session): void;
  signOut(expired?: boolean): void;
  api: ApiClient;
};

const Ctx = createContext<AuthState | null>(null);

export function AuthProvider({
  config,
  initial,
  children,
  fetchImpl,
}: {
  config: ConsoleConfig;
  initial?: Session | null;
  children: ReactNode;
  fetchImpl?: typeof fetch;
}) {
  const [session, setSession] = useState<Session | null>(() => (initial === undefined ? loadSession() : initial));
  const [expired, setExpired] = useState(false);
  const signIn = useCallback((s: Session) => {
    saveSession(s);
    setExpired(false);
    setSession(s);
  }, []);
  const signOut = useCallback((wasExpired = false) => {
    saveSession(null);
    setExpired(wasExpired);
    setSession(null);
  }, []);
  const api = useMemo(
    () =>
      createApi(
        config.apiBase,
        () => (session ? session.idToken : null),
        () => signOut(true),
        fetchImpl,
      ),
    [config.apiBase, session, signOut, fetchImpl],
  );
  const value = useMemo(() => ({ config, session, expired, signIn, signOut, api }), [config, session, expired, signIn, signOut, api]);
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useAuth(): AuthState {
  const v = useContext(Ctx);
  if (!v) throw new Error("useAuth outside AuthProvider");
  return v;
}
