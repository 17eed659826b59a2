import { areasOf, homeOf, loadSession, saveSession, sessionFromTokens } from "../auth/session";
import { parseConfig } from "../config";
import { idToken } from "./render";

describe("session", () => {
  it("reads roles and the store from the id token", () => {
    const s = sessionFromTokens(idToken(["store-staff", "not-a-role" as never], { "custom:store_id": "MAD-SOL" }));
    expect(s.roles).toEqual(["store-staff"]);
    expect(s.storeId).toBe("MAD-SOL");
    expect(s.email).toBe("store-staff@demo.local");
  });

  it("an expired session is not restored", () => {
    const s = sessionFromTokens(idToken(["admin"], { exp: Math.floor(Date.now() / 1000) - 10 }));
    saveSession(s);
    expect(loadSession()).toBeNull();
    const live = sessionFromTokens(idToken(["admin"]));
    saveSession(live);
    expect(loadSession()?.roles).toEqual(["admin"]);
  });

  it("navigation follows the role", () => {
    expect(areasOf(["store-staff"])).toEqual(["customers", "reservations", "stock"]);
    expect(areasOf(["marketing"])).toEqual(["stock", "rules", "kpis"]);
    expect(areasOf(["privacy"])).toEqual(["customers", "privacy"]);
    expect(areasOf(["privacy", "marketing"])).toEqual(["customers", "stock", "rules", "kpis", "privacy"]);
    expect(areasOf(["admin"])).toHaveLength(7);
    expect(areasOf([])).toEqual([]);
  });

  it("each role starts at its daily work", () => {
    expect(homeOf(["store-staff"])).toBe("customers");
    expect(homeOf(["marketing"])).toBe("kpis");
    expect(homeOf(["privacy"])).toBe("customers");
    expect(homeOf(["marketing", "privacy"])).toBe("customers");
    expect(homeOf(["admin"])).toBe("customers");
    expect(homeOf([])).toBeUndefined();
  });
});

describe("config.json", () => {
  it("accepts password and oidc modes, refuses the rest", () => {
    expect(parseConfig({ auth: { mode: "password", cognitoEndpoint: "/c", clientId: "x" } }).auth.mode).toBe("password");
    expect(parseConfig({ auth: { mode: "oidc", authority: "https://a", clientId: "x" }, apiBase: "https://api/" }).apiBase).toBe("https://api");
    expect(() => parseConfig({ auth: { mode: "oidc", authority: "https://a" } })).toThrow(/clientId/);
    expect(() => parseConfig({ auth: { mode: "magic", clientId: "x" } })).toThrow(/auth mode/);
    expect(() => parseConfig(null)).toThrow();
  });
});
