/** Turns the range API's days into chart rows: one row per day, one key per channel / store. */
import type { KpiRange, KpiSummary, Money } from "./types";

export type Row = { date: string } & Record<string, number | string>;

function num(v: number | string | undefined): number {
  const n = typeof v === "string" ? Number(v) : (v ?? 0);
  return Number.isFinite(n) ? n : 0;
}

export function currencies(range: KpiRange): string[] {
  const seen = new Set<string>();
  const add = (m: Money) => Object.keys(m).forEach((c) => seen.add(c));
  for (const group of [range.totals.channels, range.totals.stores]) {
    for (const s of Object.values(group)) {
      add(s.revenue);
      add(s.refunded);
    }
  }
  return [...seen].sort();
}

export function seriesKeys(range: KpiRange, by: "channels" | "stores"): string[] {
  const keys = new Set<string>(Object.keys(range.totals[by]));
  for (const d of range.days) Object.keys(d[by]).forEach((k) => keys.add(k));
  return [...keys].sort();
}

export function perDay(
  range: KpiRange,
  by: "channels" | "stores",
  value: (s: KpiSummary) => number,
): { rows: Row[]; keys: string[] } {
  const keys = seriesKeys(range, by);
  const rows = range.days.map((d) => {
    const row: Row = { date: d.date };
    for (const k of keys) row[k] = d[by][k] ? value(d[by][k]) : 0;
    return row;
  });
  return { rows, keys };
}

export const revenueIn = (currency: string) => (s: KpiSummary) => num(s.revenue[currency]);
export const orders = (s: KpiSummary) => s.orders;

export function paymentMethods(range: KpiRange, currency: string): { method: string; orders: number; revenue: number }[] {
  const out = new Map<string, { orders: number; revenue: number }>();
  for (const s of Object.values(range.totals.channels)) {
    for (const [method, v] of Object.entries(s.sales_by_payment_method)) {
      const cur = out.get(method) ?? { orders: 0, revenue: 0 };
      cur.orders += v.orders;
      cur.revenue += num(v.revenue[currency]);
      out.set(method, cur);
    }
  }
  return [...out.entries()].map(([method, v]) => ({ method, ...v })).sort((a, b) => b.revenue - a.revenue);
}

export function hasData(range: KpiRange): boolean {
  return Object.values(range.totals.channels).some((s) => s.events > 0 || s.orders > 0);
}

export { num };
