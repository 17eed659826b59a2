import { Alert, Badge, Button, Card, Group, Stack, Text, TextInput, Title } from "@mantine/core";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { enc } from "../api";
import { useAuth } from "../auth/context";
import { ErrorState } from "../components/states";
import { fmtDate } from "../format";
import { COLLECTABLE } from "../types";
import type { Reservation } from "../types";

export function Collect() {
  const { t } = useTranslation();
  const { api, session } = useAuth();
  const [rid, setRid] = useState("");
  const [res, setRes] = useState<Reservation | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);

  async function lookup(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setRes(null);
    setDone(false);
    setBusy(true);
    try {
      setRes(await api.get<Reservation>(`/reservations/${enc(rid.trim())}`));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  async function collect() {
    if (!res) return;
    setError(null);
    setBusy(true);
    try {
      setRes(await api.post<Reservation>(`/reservations/${enc(res.reservation_id)}/collect`));
      setDone(true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  const mine = session?.storeId;
  const elsewhere = !!res && !!mine && res.location_id !== mine;
  return (
    <Stack maw={620}>
      <Title order={2}>{t("collect.title")}</Title>
      <form onSubmit={lookup}>
        <Group align="flex-end">
          <TextInput label={t("collect.id")} value={rid} onChange={(e) => setRid(e.currentTarget.value)} required autoComplete="off" size="md" style={{ flex: 1 }} />
          <Button type="submit" loading={busy && !res} size="md">
            {t("collect.lookup")}
          </Button>
        </Group>
      </form>
      {error !== null && <ErrorState error={error} />}
      {res && (
        <Card withBorder>
          <Stack gap="xs">
            <Text fw={600}>{res.reservation_id}</Text>
            <Text>
              {res.quantity} × {res.sku} · {res.location_id}
            </Text>
            <Text>
              <Badge component="span" variant="light">{t("collect.status", { status: res.status })}</Badge> · {fmtDate(res.hold_until)}
            </Text>
            {elsewhere && (
              <Alert color="yellow" role="alert">
                {t("collect.wrongStore", { store: res.location_id, mine })}
              </Alert>
            )}
            {done && (
              <Alert color="teal" role="status">
                {t("collect.done")}
              </Alert>
            )}
            {COLLECTABLE.has(res.status) && !elsewhere && (
              <Button onClick={() => void collect()} loading={busy} size="md">
                {t("collect.collect")}
              </Button>
            )}
          </Stack>
        </Card>
      )}
    </Stack>
  );
}
