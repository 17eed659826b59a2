import { Button, Card, Group, Select, SimpleGrid, Stack, Text, TextInput, Title } from "@mantine/core";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { ApiError } from "../api";
import { useAuth } from "../auth/context";
import { DataTable } from "../components/DataTable";
import { Empty, Show, useLoad } from "../components/states";
import { fmtMoney, fmtNumber } from "../format";
import { currencies, hasData, num, orders, paymentMethods, perDay, revenueIn, type Row } from "../kpis";
import type { KpiRange } from "../types";

// Colour-blind-safe palette (Okabe-Ito), every colour readable on white.
const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];

function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

export function Kpis() {
  const { t } = useTranslation();
  const { api } = useAuth();
  const today = new Date();
  const weekAgo = new Date(today.getTime() - 6 * 86400_000);
  const [form, setForm] = useState({ from: isoDay(weekAgo), to: isoDay(today), store: "" });
  const [query, setQuery] = useState(form);
  const state = useLoad(
    () => api.get<KpiRange>("/kpis/daily", { from: query.from, to: query.to, store: query.store || undefined }),
    [api, query],
  );
  function submit(e: FormEvent) {
    e.preventDefault();
    setQuery({ ...form });
  }
  return (
    <Stack>
      <Title order={2}>{t("kpis.title")}</Title>
      <form onSubmit={submit} aria-label={t("kpis.title")}>
        <Group align="flex-end">
          <TextInput type="date" label={t("kpis.from")} value={form.from} onChange={(e) => setForm({ ...form, from: e.currentTarget.value })} required />
          <TextInput type="date" label={t("kpis.to")} value={form.to} onChange={(e) => setForm({ ...form, to: e.currentTarget.value })} required />
          <TextInput label={t("kpis.store")} value={form.store} onChange={(e) => setForm({ ...form, store: e.currentTarget.value })} />
          <Button type="submit">{t("kpis.show")}</Button>
        </Group>
      </form>
      {state.error instanceof ApiError && state.error.status === 404 && state.error.code === "route_not_found" ? (
        <Empty>{t("kpis.unavailable")}</Empty>
      ) : (
        <Show state={state}>{(range) => (hasData(range) ? <Dashboard range={range} /> : <Empty>{t("kpis.noData")}</Empty>)}</Show>
      )}
    </Stack>
  );
}

function Dashboard({ range }: { range: KpiRange }) {
  const { t } = useTranslation();
  const curs = currencies(range);
  const [currency, setCurrency] = useState(curs[0] ?? "EUR");
  const revenue = perDay(range, "channels", revenueIn(currency));
  const ordersByChannel = perDay(range, "channels", orders);
  const revenueByStore = perDay(range, "stores", revenueIn(currency));
  const methods = paymentMethods(range, currency);
  const totals = Object.entries(range.totals.channels).sort(([a], [b]) => a.localeCompare(b));
  return (
    <Stack>
      {curs.length > 1 && (
        <Select label={t("kpis.currency")} value={currency} onChange={(v) => v && setCurrency(v)} data={curs} w={160} allowDeselect={false} />
      )}
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <ChartCard title={t("kpis.revenueByChannel")} rows={revenue.rows} keys={revenue.keys} money={currency} testId="chart-revenue-channel" />
        <ChartCard title={t("kpis.ordersByChannel")} rows={ordersByChannel.rows} keys={ordersByChannel.keys} testId="chart-orders-channel" />
        <ChartCard title={t("kpis.revenueByStore")} rows={revenueByStore.rows} keys={revenueByStore.keys} money={currency} testId="chart-revenue-store" />
        <Card withBorder>
          <Title order={3} size="h5" mb="xs">
            {t("kpis.paymentMethods")}
          </Title>
          {methods.length === 0 ? (
            <Empty />
          ) : (
            <div role="img" aria-label={t("kpis.paymentMethods")} data-testid="chart-payment-methods">
              <ResponsiveContainer width="100%" height={220}>
                <BarChart data={methods} layout="vertical" margin={{ left: 24 }}>
                  <CartesianGrid strokeDasharray="3 3" />
                  <XAxis type="number" />
                  <YAxis type="category" dataKey="method" width={90} />
                  <Tooltip formatter={(v) => fmtMoney(Number(v), currency)} />
                  <Bar dataKey="revenue" name={t("kpis.revenue")} fill={PALETTE[0]} isAnimationActive={false} />
                </BarChart>
              </ResponsiveContainer>
            </div>
          )}
          <DataTable
            caption={t("kpis.numbers")}
            head={[t("kpis.method"), t("kpis.orders"), t("kpis.revenue")]}
            rows={methods.map((m) => [m.method, fmtNumber(m.orders), fmtMoney(m.revenue, currency)])}
          />
        </Card>
      </SimpleGrid>
      <DataTable
        caption={`${t("kpis.numbers")} (${range.from} – ${range.to})`}
        head={[
          t("kpis.channel"),
          t("kpis.orders"),
          t("kpis.revenue"),
          t("kpis.averageTicket"),
          t("kpis.refunds"),
          t("kpis.active"),
          t("kpis.ropo"),
          t("kpis.showrooming"),
        ]}
        rows={totals.map(([ch, s]) => [
          ch,
          fmtNumber(s.orders),
          fmtMoney(num(s.revenue[currency]), currency),
          s.average_ticket[currency] !== undefined ? fmtMoney(num(s.average_ticket[currency]), currency) : "—",
          fmtNumber(s.refunds),
          fmtNumber(s.active_customers),
          fmtNumber(s.ropo_orders),
          fmtNumber(s.showrooming_orders),
        ])}
      />
    </Stack>
  );
}

function ChartCard({ title, rows, keys, money, testId }: { title: string; rows: Row[]; keys: string[]; money?: string; testId: string }) {
  const { t } = useTranslation();
  const fmt = (v: unknown) => (money ? fmtMoney(Number(v), money) : fmtNumber(Number(v)));
  return (
    <Card withBorder>
      <Title order={3} size="h5" mb="xs">
        {title}
      </Title>
      {keys.length === 0 ? (
        <Empty />
      ) : (
        <>
          <div role="img" aria-label={title} data-testid={testId}>
            <ResponsiveContainer width="100%" height={240}>
              <BarChart data={rows}>
                <CartesianGrid strokeDasharray="3 3" />
                <XAxis dataKey="date" />
                <YAxis />
                <Tooltip formatter={(v) => fmt(v)} />
                <Legend />
                {keys.map((k, i) => (
                  <Bar key={k} dataKey={k} stackId="a" fill={PALETTE[i % PALETTE.length]} isAnimationActive={false} />
                ))}
              </BarChart>
            </ResponsiveContainer>
          </div>
          <details>
            <summary>
              <Text span size="sm">
                {t("kpis.numbers")}
              </Text>
            </summary>
            <DataTable caption={title} head={[t("kpis.day"), ...keys]} rows={rows.map((r) => [r.date, ...keys.map((k) => fmt(r[k]))])} />
          </details>
        </>
      )}
    </Card>
  );
}
