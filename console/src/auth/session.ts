/** The signed-in staff member: tokens and the claims the console reads (never verified here:
 * API Gateway verifies every call; the console only decides what to show). */

export type Role = "store-staff" | "marketing" | "privacy" | "admin";
export const ROLES: Role[] = ["store-staff", "marketing", "privacy", "admin"];

export type Session = {
  idToken: string;
  accessToken?: string;
  expiresAt: number; // epoch ms
  email: string;
  roles: Role[];
  storeId?: string;
};

function decodePart(part: string): Record<string, unknown> {
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
}

/** Claims of a JWT (the payload), or throws on a malformed token. */
export function claimsOf(token: string): Record<string, unknown> {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("not a JWT");
  return decodePart(parts[1]);
}

export function sessionFromTokens(idToken: string, accessToken?: string): Session {
  const claims = claimsOf(idToken);
  const groups = Array.isArray(claims["cognito:groups"]) ? (claims["cognito:groups"] as unknown[]) : [];
  const roles = groups.filter((g): g is Role => ROLES.includes(g as Role));
  const exp = typeof claims.exp === "number" ? claims.exp * 1000 : Date.now() + 3600_000;
  const storeId = typeof claims["custom:store_id"] === "string" ? (claims["custom:store_id"] as string) : undefined;
  const email = typeof claims.email === "string" ? claims.email : String(claims["cognito:username"] ?? "");
  return { idToken, accessToken, expiresAt: exp, email, roles, storeId };
}

const KEY = "loyalty-console.session";

export function saveSession(session: Session | null): void {
  if (session) sessionStorage.setItem(KEY, JSON.stringify(session));
  else sessionStorage.removeItem(KEY);
}

export function loadSession(now: number = Date.now()): Session | null {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return null;
  try {
    const s = JSON.parse(raw) as Session;
    return s.expiresAt > now ? s : null;
  } catch {
    return null;
  }
}

/** What each role may open; admin sees everything. It mirrors the API's access policy
 * (`loyalty/auth/policy.py`), which decides: the customer 360 is store staff's and privacy's,
 * collecting a reservation store staff's, points rules and KPIs marketing's, erasure privacy's,
 * merge decisions (reviews, unmerge) admin's alone. */
export type Area = "customers" | "reservations" | "stock" | "reviews" | "rules" | "kpis" | "privacy";

const AREAS: Record<Role, Area[]> = {
  "store-staff": ["customers", "reservations", "stock"],
  marketing: ["kpis", "rules", "stock"],
  privacy: ["customers", "privacy"],
  admin: ["customers", "reservations", "stock", "reviews", "rules", "kpis", "privacy"],
};

export function areasOf(roles: Role[]): Area[] {
  const all = new Set<Area>();
  for (const r of roles) for (const a of AREAS[r]) all.add(a);
  const order: Area[] = ["customers", "reservations", "stock", "reviews", "rules", "kpis", "privacy"];
  return order.filter((a) => all.has(a));
}

/** Where a session starts: its daily work (finding a customer; for marketing, the KPIs). */
export function homeOf(roles: Role[]): Area | undefined {
  const areas = areasOf(roles);
  return (["customers", "kpis"] as Area[]).find((a) => areas.includes(a)) ?? areas[0];
}

export function can(session: Session | null, area: Area): boolean {
  return !!session && areasOf(session.roles).includes(area);
}
