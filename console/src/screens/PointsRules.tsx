import { Alert, Badge, Button, Card, Group, MultiSelect, NumberInput, Select, SimpleGrid, Stack, TextInput, Title } from "@mantine/core";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { enc } from "../api";
import { useAuth } from "../auth/context";
import { DataTable } from "../components/DataTable";
import { ErrorState, Show, useLoad } from "../components/states";
import type { PointsRule } from "../types";

const KINDS = ["base", "multiplier", "fixed_bonus", "first_channel_purchase", "omnichannel"] as const;
const CHANNELS = ["web", "pos", "app", "chat"];

function earns(r: PointsRule): string {
  if (r.kind === "base") return `${r.points_per_unit} / ${r.currency ?? ""}`;
  if (r.multiplier) return `×${String(r.multiplier)}`;
  if (r.bonus_points) return `+${String(r.bonus_points)}`;
  return "—";
}

export function PointsRules() {
  const { t } = useTranslation();
  const { api } = useAuth();
  const state = useLoad(() => api.get<{ rules: PointsRule[] }>("/points/rules"), [api]);
  const [error, setError] = useState<unknown>(null);
  async function deactivate(id: string) {
    setError(null);
    try {
      await api.post(`/points/rules/${enc(id)}/deactivate`);
      state.reload();
    } catch (e) {
      setError(e);
    }
  }
  return (
    <Stack>
      <Title order={2}>{t("rules.title")}</Title>
      {error !== null && <ErrorState error={error} />}
      <Show state={state} empty={(d) => d.rules.length === 0}>
        {(d) => (
          <DataTable
            caption={t("rules.title")}
            head={[t("rules.id"), t("rules.kind"), t("rules.description"), t("rules.channels"), t("rules.value"), t("rules.active"), ""]}
            rows={d.rules.map((r) => [
              r.rule_id,
              r.kind,
              r.description,
              r.channels.length ? r.channels.join(", ") : t("rules.all"),
              earns(r),
              <Badge key="a" color={r.active ? "teal" : "gray"} variant="light">
                {r.active ? "✓" : "—"}
              </Badge>,
              r.active ? (
                <Button key="d" size="xs" variant="default" onClick={() => void deactivate(r.rule_id)} aria-label={`${t("rules.deactivate")} ${r.rule_id}`}>
                  {t("rules.deactivate")}
                </Button>
              ) : null,
            ])}
          />
        )}
      </Show>
      <NewRule onCreated={state.reload} />
    </Stack>
  );
}

function NewRule({ onCreated }: { onCreated: () => void }) {
  const { t } = useTranslation();
  const { api } = useAuth();
  const [kind, setKind] = useState<string>("multiplier");
  const [ruleId, setRuleId] = useState("");
  const [description, setDescription] = useState("");
  const [channels, setChannels] = useState<string[]>([]);
  const [currency, setCurrency] = useState("EUR");
  const [amount, setAmount] = useState<number | string>(2);
  const [error, setError] = useState<unknown>(null);
  const [ok, setOk] = useState<string | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setOk(null);
    const body: Record<string, unknown> = { rule_id: ruleId.trim(), kind, description, channels };
    if (kind === "base") Object.assign(body, { currency, points_per_unit: String(amount) });
    else if (kind === "multiplier") body.multiplier = String(amount);
    else body.bonus_points = Number(amount);
    try {
      await api.post("/points/rules", body);
      setOk(t("rules.created", { id: ruleId }));
      onCreated();
    } catch (err) {
      setError(err);
    }
  }
  const amountLabel = kind === "base" ? t("rules.perUnit") : kind === "multiplier" ? t("rules.multiplier") : t("rules.bonus");
  return (
    <Card withBorder component="section" aria-labelledby="new-rule">
      <form onSubmit={submit}>
        <Stack>
          <Title order={3} size="h4" id="new-rule">
            {t("rules.new")}
          </Title>
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <TextInput label={t("rules.id")} value={ruleId} onChange={(e) => setRuleId(e.currentTarget.value)} required pattern="[a-z0-9][a-z0-9_-]{0,63}" />
            <Select label={t("rules.kind")} value={kind} onChange={(v) => v && setKind(v)} data={[...KINDS]} allowDeselect={false} />
            <TextInput label={t("rules.description")} value={description} onChange={(e) => setDescription(e.currentTarget.value)} />
            <MultiSelect label={t("rules.channels")} value={channels} onChange={setChannels} data={CHANNELS} placeholder={t("rules.all")} />
            {kind === "base" && <TextInput label={t("rules.currency")} value={currency} onChange={(e) => setCurrency(e.currentTarget.value.toUpperCase())} maxLength={3} />}
            <NumberInput label={amountLabel} value={amount} onChange={setAmount} min={0} required />
          </SimpleGrid>
          {ok && (
            <Alert color="teal" role="status">
              {ok}
            </Alert>
          )}
          {error !== null && <ErrorState error={error} />}
          <Group>
            <Button type="submit">{t("rules.create")}</Button>
          </Group>
        </Stack>
      </form>
    </Card>
  );
}
