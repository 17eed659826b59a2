import { Button, Group, Stack, TextInput, Title } from "@mantine/core";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { enc } from "../api";
import { useAuth } from "../auth/context";
import { DataTable } from "../components/DataTable";
import { ErrorState, Loading } from "../components/states";
import { fmtDate, fmtNumber } from "../format";
import type { StockView } from "../types";

export function Stock() {
  const { t } = useTranslation();
  const { api } = useAuth();
  const [sku, setSku] = useState("");
  const [view, setView] = useState<StockView | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function show(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setView(null);
    try {
      setView(await api.get<StockView>(`/stock/${enc(sku.trim())}`));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return (
    <Stack>
      <Title order={2}>{t("stock.title")}</Title>
      <form onSubmit={show}>
        <Group align="flex-end">
          <TextInput label={t("stock.sku")} value={sku} onChange={(e) => setSku(e.currentTarget.value)} required autoComplete="off" size="md" />
          <Button type="submit" size="md" loading={busy}>
            {t("stock.lookup")}
          </Button>
        </Group>
      </form>
      {busy && <Loading />}
      {error !== null && <ErrorState error={error} />}
      {view && (
        <DataTable
          caption={`${view.sku} · ${t("stock.online")}: ${fmtNumber(view.online_available)}`}
          head={[t("stock.location"), t("stock.onHand"), t("stock.reserved"), t("stock.available"), t("stock.counted")]}
          rows={[
            ...view.locations.map((l) => [l.location_id, fmtNumber(l.on_hand), fmtNumber(l.reserved), fmtNumber(l.available), fmtDate(l.counted_at ?? l.updated_at)]),
            [t("stock.total"), fmtNumber(view.on_hand), fmtNumber(view.reserved), fmtNumber(view.available), ""],
          ]}
        />
      )}
    </Stack>
  );
}
