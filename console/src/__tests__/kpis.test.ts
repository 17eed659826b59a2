import { currencies, hasData, paymentMethods, perDay, revenueIn } from "../kpis";
import type { KpiRange, KpiSummary } from "../types";

function summary(over: Partial<KpiSummary>): KpiSummary {
  return {
    events: 1,
    events_by_type: {},
    orders: 0,
    revenue: {},
    average_ticket: {},
    sales_by_payment_method: {},
    refunds: 0,
    refunded: {},
    active_customers: 0,
    ropo_orders: 0,
    showrooming_orders: 0,
    ...over,
  };
}

const RANGE: KpiRange = {
  from: "2026-11-27",
  to: "2026-11-28",
  days: [
    { date: "2026-11-27", channels: { pos: summary({ orders: 1, revenue: { EUR: 120.5 } }) }, stores: { "MAD-SOL": summary({ orders: 1, revenue: { EUR: 120.5 } }) } },
    { date: "2026-11-28", channels: { web: summary({ orders: 2, revenue: { EUR: "30" } }) }, stores: {} },
  ],
  totals: {
    channels: {
      pos: summary({ orders: 1, revenue: { EUR: 120.5 }, sales_by_payment_method: { card: { orders: 1, revenue: { EUR: 120.5 } } } }),
      web: summary({ orders: 2, revenue: { EUR: "30" }, sales_by_payment_method: { card: { orders: 1, revenue: { EUR: 10 } }, paypal: { orders: 1, revenue: { EUR: 20 } } } }),
    },
    stores: { "MAD-SOL": summary({ orders: 1, revenue: { EUR: 120.5 } }) },
  },
};

describe("KPI rows", () => {
  it("one row per day, zero where a channel had nothing", () => {
    const { rows, keys } = perDay(RANGE, "channels", revenueIn("EUR"));
    expect(keys).toEqual(["pos", "web"]);
    expect(rows).toEqual([
      { date: "2026-11-27", pos: 120.5, web: 0 },
      { date: "2026-11-28", pos: 0, web: 30 },
    ]);
  });

  it("payment methods summed over channels, biggest first", () => {
    expect(paymentMethods(RANGE, "EUR")).toEqual([
      { method: "card", orders: 2, revenue: 130.5 },
      { method: "paypal", orders: 1, revenue: 20 },
    ]);
  });

  it("currencies and emptiness", () => {
    expect(currencies(RANGE)).toEqual(["EUR"]);
    expect(hasData(RANGE)).toBe(true);
    expect(hasData({ ...RANGE, days: [], totals: { channels: {}, stores: {} } })).toBe(false);
  });
});
