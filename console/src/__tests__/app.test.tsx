import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { vi } from "vitest";
import { App } from "../App";
import { fakeFetch, idToken, renderApp, session } from "./render";

const ANA = {
  customer_id: "c_ana",
  requested_id: "c_ana",
  status: "active",
  created_at: "2026-11-20T10:00:00Z",
  profile: {
    first_name: "Ana",
    last_name: "García",
    locale: "es",
    timezone: "Europe/Madrid",
    birthday: null,
    postal_code: null,
    preferred_channel: null,
    field_sources: { first_name: { source: "web", at: "2026-11-25T07:14:38Z", verified: true } },
  },
  identifiers: [{ type: "loyalty_card", value: "770012345678", channel: "app", attached_at: "2026-11-20T10:00:00Z" }],
  consents: { email: { granted: false, source: "email:unsubscribe", at: "2026-11-28T10:00:00Z" } },
  points: { available: 120, pending: 407, debt: 0, lifetime_earned: 527, tier: "bronze" },
  absorbed_ids: [],
  merges: [],
  last_interactions: [],
};

describe("signed out", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("shows a labelled sign-in form and switches language", async () => {
    const user = userEvent.setup({ delay: null });
    renderApp(<App />, { session: null });
    expect(screen.getByRole("heading", { name: "Staff sign-in" })).toBeInTheDocument();
    expect(screen.getByLabelText(/Email/)).toBeRequired();
    expect(screen.getByLabelText(/Password/)).toBeInTheDocument();
    await user.click(screen.getByText("Español"));
    expect(await screen.findByRole("heading", { name: "Acceso del personal" })).toBeInTheDocument();
    expect(screen.getByLabelText(/Contraseña/)).toBeInTheDocument();
  });

  it("signs in with Cognito's InitiateAuth and opens the role's home", async () => {
    const token = idToken(["store-staff"], { "custom:store_id": "MAD-SOL" });
    const cognito = fakeFetch({
      "POST /__devstack/cognito": () => [200, { AuthenticationResult: { IdToken: token, AccessToken: "a" } }],
    });
    vi.stubGlobal("fetch", cognito.impl);
    const user = userEvent.setup({ delay: null });
    renderApp(<App />, { session: null });
    await user.type(screen.getByLabelText(/Email/), "store@demo.local");
    await user.type(screen.getByLabelText(/Password/), "Demo-Passw0rd!");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("heading", { name: "Find a customer" })).toBeInTheDocument();
    const call = cognito.calls[0];
    expect(call.headers["X-Amz-Target"]).toBe("AWSCognitoIdentityProviderService.InitiateAuth");
    expect(call.body).toMatchObject({
      AuthFlow: "USER_PASSWORD_AUTH",
      ClientId: "client-1",
      AuthParameters: { USERNAME: "store@demo.local", PASSWORD: "Demo-Passw0rd!" },
    });
    expect(screen.getByText(/Store MAD-SOL/)).toBeInTheDocument();
  });

  it("says when the password is wrong", async () => {
    vi.stubGlobal(
      "fetch",
      fakeFetch({ "POST /__devstack/cognito": () => [400, { __type: "NotAuthorizedException", message: "Incorrect username or password." }] }).impl,
    );
    const user = userEvent.setup({ delay: null });
    renderApp(<App />, { session: null });
    await user.type(screen.getByLabelText(/Email/), "store@demo.local");
    await user.type(screen.getByLabelText(/Password/), "nope");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Wrong email or password.");
  });
});

describe("navigation by role", () => {
  it("store staff: customers, collect, stock; no KPIs", () => {
    renderApp(<App />, { session: session(["store-staff"], "MAD-SOL"), path: "/customers" });
    const nav = screen.getByRole("navigation", { name: "Main navigation" });
    expect(within(nav).getAllByRole("link").map((a) => a.textContent)).toEqual(["Find a customer", "Collect a reservation", "Stock"]);
  });

  it("marketing: KPIs and rules; a store-only page says why it is refused", () => {
    renderApp(<App />, { session: session(["marketing"]), path: "/reservations" });
    const nav = screen.getByRole("navigation", { name: "Main navigation" });
    expect(within(nav).getByRole("link", { name: "KPI dashboard" })).toBeInTheDocument();
    expect(within(nav).getByRole("link", { name: "Points rules" })).toBeInTheDocument();
    expect(screen.getByRole("alert")).toHaveTextContent("Your role (marketing) does not allow this");
  });
});

describe("customer 360", () => {
  it("finds Ana by her card and shows her profile, consents and points", async () => {
    const api = fakeFetch({
      "GET /customers": () => [200, ANA],
      "GET /customers/c_ana": () => [200, ANA],
      "GET /customers/c_ana/points": () => [
        200,
        { ...ANA.points, customer_id: "c_ana", next_tier: "silver", points_to_next_tier: 593, qualifying_points_12m: 407, lots: [
          { order_id: "T-000481", channel: "pos", status: "pending", points: 274, remaining: 249, reversed: 25, earned_at: "2026-11-27T03:06:43Z", age_days: 3, pending_until: "2026-12-11T03:06:43Z", expires_on: "2027-11-27T03:06:43Z", origin_customer_id: null },
        ] },
      ],
      "GET /customers/c_ana/timeline": () => [200, { customer_id: "c_ana", next_before: null, entries: [
        { entity: "timeline", event_id: "e1", occurred_at: "2026-11-27T03:06:43Z", channel: "pos", type: "order.completed", customer_id: "c_ana", summary: { order_id: "T-000481" } },
      ] }],
    });
    const user = userEvent.setup({ delay: null });
    renderApp(<App />, { session: session(["store-staff"], "MAD-SOL"), path: "/customers", fetchImpl: api.impl });
    await user.type(screen.getByLabelText(/^Identifier(?! type)/), "770012345678{Enter}");
    expect(await screen.findByRole("heading", { name: "Customer Ana García" })).toBeInTheDocument();
    expect(api.calls[0].url).toBe("/customers?card=770012345678");
    expect(api.calls[0].headers.Authorization).toMatch(/^Bearer ey/);
    expect(screen.getByText("770012345678")).toBeInTheDocument();
    expect(screen.getByText("Refused")).toBeInTheDocument();
    expect(screen.getByText(/web · verified/)).toBeInTheDocument();

    await user.click(screen.getByRole("tab", { name: "Points" }));
    expect(await screen.findByTestId("points-pending")).toHaveTextContent("407");
    expect(screen.getByText(/593 points to silver/)).toBeInTheDocument();
    expect(screen.getByText("T-000481")).toBeInTheDocument();

    await user.click(screen.getByRole("tab", { name: "Timeline" }));
    expect(await screen.findByText("order.completed")).toBeInTheDocument();
  });

  it("an unknown card says so", async () => {
    const api = fakeFetch({ "GET /customers": () => [404, { error: { code: "customer_not_found", message: "no" } }] });
    const user = userEvent.setup({ delay: null });
    renderApp(<App />, { session: session(["store-staff"]), path: "/customers", fetchImpl: api.impl });
    await user.type(screen.getByLabelText(/^Identifier(?! type)/), "000{Enter}");
    expect(await screen.findByRole("alert")).toHaveTextContent("No customer has this identifier.");
  });

  it("a 401 ends the session and asks to sign in again", async () => {
    const api = fakeFetch({ "GET /customers/c_ana": () => [401, { message: "Unauthorized" }] });
    renderApp(<App />, { session: session(["store-staff"]), path: "/customers/c_ana", fetchImpl: api.impl });
    expect(await screen.findByText("Your session has ended. Please sign in again.")).toBeInTheDocument();
    expect(screen.getByRole("heading", { name: "Staff sign-in" })).toBeInTheDocument();
  });

  it("a 403 says the role lacks it", async () => {
    const api = fakeFetch({ "GET /customers/c_ana": () => [403, { error: { code: "forbidden", message: "no" } }] });
    renderApp(<App />, { session: session(["store-staff"]), path: "/customers/c_ana", fetchImpl: api.impl });
    expect(await screen.findByRole("alert")).toHaveTextContent("Your role (store-staff) does not allow this");
  });

  it("collects a reservation at my store from the customer's reservations", async () => {
    const res = { reservation_id: "res_1", customer_id: "c_ana", sku: "SKU-JACKET", location_id: "MAD-SOL", quantity: 1, status: "ready", created_at: "2026-11-29T10:00:00Z", hold_until: "2026-12-01T10:00:00Z", updated_at: null };
    const api = fakeFetch({
      "GET /customers/c_ana": () => [200, ANA],
      "GET /customers/c_ana/reservations": () => [200, { reservations: [res] }],
      "POST /reservations/res_1/collect": () => [200, { ...res, status: "collected" }],
    });
    const user = userEvent.setup({ delay: null });
    renderApp(<App />, { session: session(["store-staff"], "MAD-SOL"), path: "/customers/c_ana", fetchImpl: api.impl });
    await user.click(await screen.findByRole("tab", { name: "Reservations" }));
    await user.click(await screen.findByRole("button", { name: "Collect res_1" }));
    expect(await screen.findByText("collected")).toBeInTheDocument();
    expect(api.calls.some((c) => c.method === "POST" && c.url === "/reservations/res_1/collect")).toBe(true);
  });

  it("privacy sees reservations but may not collect them, nor unmerge (the API's policy)", async () => {
    const res = { reservation_id: "res_1", customer_id: "c_ana", sku: "SKU-JACKET", location_id: "MAD-SOL", quantity: 1, status: "ready", created_at: "2026-11-29T10:00:00Z", hold_until: "2026-12-01T10:00:00Z", updated_at: null };
    const merged = { ...ANA, merges: ["m_1"] };
    const api = fakeFetch({
      "GET /customers/c_ana": () => [200, merged],
      "GET /customers/c_ana/reservations": () => [200, { reservations: [res] }],
    });
    const user = userEvent.setup({ delay: null });
    renderApp(<App />, { session: session(["privacy"]), path: "/customers/c_ana", fetchImpl: api.impl });
    expect(await screen.findByRole("button", { name: "Erase this customer" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Undo the latest merge" })).toBeNull();
    await user.click(screen.getByRole("tab", { name: "Reservations" }));
    expect(await screen.findByRole("cell", { name: "res_1" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Collect res_1" })).toBeNull();
  });

  it("admin may unmerge", async () => {
    const api = fakeFetch({ "GET /customers/c_ana": () => [200, { ...ANA, merges: ["m_1"] }] });
    renderApp(<App />, { session: session(["admin"]), path: "/customers/c_ana", fetchImpl: api.impl });
    expect(await screen.findByRole("button", { name: "Undo the latest merge" })).toBeInTheDocument();
  });

  it("erasure needs the typed confirmation", async () => {
    const api = fakeFetch({
      "GET /customers/c_ana": () => [200, ANA],
      "DELETE /customers/c_ana": () => [200, { customer_id: "c_ana", erased_ids: ["c_ana"], erased_at: "x", items_removed: 9, identifiers_freed: 1, events_anonymised: 3 }],
    });
    const user = userEvent.setup({ delay: null });
    renderApp(<App />, { session: session(["privacy"]), path: "/customers/c_ana", fetchImpl: api.impl });
    await user.click(await screen.findByRole("button", { name: "Erase this customer" }));
    const dialog = await screen.findByRole("dialog");
    const confirm = within(dialog).getByRole("button", { name: "Erase" });
    expect(confirm).toBeDisabled();
    await user.type(within(dialog).getByLabelText("Type ERASE"), "ERASE");
    await user.click(confirm);
    await waitFor(() => expect(api.calls.some((c) => c.method === "DELETE")).toBe(true));
  });
});

describe("merge reviews", () => {
  it("shows both customers side by side and approves", async () => {
    const review = { review_id: "r_1", status: "pending", customer_ids: ["c_a", "c_b"], survivor_id: "c_a", problems: ["different names"], event_id: "e", channel: "pos", identifier_types: ["phone"], created_at: "2026-11-29T10:00:00Z", decided_at: null, decided_by: null, merge_id: null };
    const who = (id: string, name: string) => ({ ...ANA, customer_id: id, requested_id: id, profile: { ...ANA.profile, first_name: name, last_name: null } });
    let decided = false;
    const api = fakeFetch({
      "GET /merge-reviews": () => [200, { reviews: decided ? [] : [review], next_cursor: null }],
      "GET /customers/c_a": () => [200, who("c_a", "Ana")],
      "GET /customers/c_b": () => [200, who("c_b", "Anna")],
      "POST /merge-reviews/r_1": () => {
        decided = true;
        return [200, { ...review, status: "approved" }];
      },
    });
    const user = userEvent.setup({ delay: null });
    renderApp(<App />, { session: session(["admin"]), path: "/merge-reviews", fetchImpl: api.impl });
    expect(await screen.findByText("Ana")).toBeInTheDocument();
    expect(await screen.findByText("Anna")).toBeInTheDocument();
    expect(screen.getByText("different names")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Approve merge" }));
    await waitFor(() => expect(screen.getByText("Nothing here yet.")).toBeInTheDocument());
    expect(api.calls.find((c) => c.method === "POST")?.body).toEqual({ decision: "approve" });
  });
});

describe("KPI dashboard", () => {
  it("asks the range API and shows the numbers behind the charts", async () => {
    const s = { events: 3, events_by_type: {}, orders: 2, revenue: { EUR: 150 }, average_ticket: { EUR: 75 }, sales_by_payment_method: { card: { orders: 2, revenue: { EUR: 150 } } }, refunds: 0, refunded: {}, active_customers: 1, ropo_orders: 1, showrooming_orders: 0 };
    const api = fakeFetch({
      "GET /kpis/daily": () => [200, { from: "2026-11-24", to: "2026-11-30", days: [{ date: "2026-11-27", channels: { pos: s }, stores: { "MAD-SOL": s } }], totals: { channels: { pos: s }, stores: { "MAD-SOL": s } } }],
    });
    renderApp(<App />, { session: session(["marketing"]), path: "/kpis", fetchImpl: api.impl });
    expect(await screen.findByTestId("chart-revenue-channel")).toBeInTheDocument();
    expect(api.calls[0].url).toMatch(/^\/kpis\/daily\?from=\d{4}-\d{2}-\d{2}&to=\d{4}-\d{2}-\d{2}$/);
    const table = screen.getByRole("table", { name: /The numbers \(2026-11-24/ });
    expect(within(table).getByText("pos")).toBeInTheDocument();
    expect(within(table).getByText("€75.00")).toBeInTheDocument();
  });

  it("says when the range is empty", async () => {
    const api = fakeFetch({ "GET /kpis/daily": () => [200, { from: "a", to: "b", days: [], totals: { channels: {}, stores: {} } }] });
    renderApp(<App />, { session: session(["marketing"]), path: "/kpis", fetchImpl: api.impl });
    expect(await screen.findByText("No sales in this range.")).toBeInTheDocument();
  });
});
