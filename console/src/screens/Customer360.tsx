import { Alert, Badge, Button, Card, Group, Modal, Progress, SimpleGrid, Stack, Tabs, Text, TextInput, Title } from "@mantine/core";
import { type ReactNode, useState } from "react";
import { useTranslation } from "react-i18next";
import { useNavigate, useParams } from "react-router-dom";
import { ApiError, enc } from "../api";
import { useAuth } from "../auth/context";
import { can } from "../auth/session";
import { DataTable } from "../components/DataTable";
import { Empty, ErrorState, Show, useLoad } from "../components/states";
import { fmtDate, fmtDay, fmtNumber } from "../format";
import { COLLECTABLE } from "../types";
import type {
  Customer,
  LedgerPage,
  NotificationPage,
  PointsDetail,
  Reservation,
  TimelineEntry,
  TimelinePage,
} from "../types";

const PROFILE_FIELDS = ["first_name", "last_name", "locale", "timezone", "birthday", "postal_code", "preferred_channel"] as const;

export function Customer360() {
  const { id = "" } = useParams();
  const { t } = useTranslation();
  const { api } = useAuth();
  const state = useLoad(() => api.get<Customer>(`/customers/${enc(id)}`), [api, id]);
  return (
    <Show state={state} notFound={t("find.notFound")}>
      {(c) => <CustomerView customer={c} onChanged={state.reload} />}
    </Show>
  );
}

function CustomerView({ customer: c, onChanged }: { customer: Customer; onChanged: () => void }) {
  const { t } = useTranslation();
  const { session } = useAuth();
  const name = [c.profile.first_name, c.profile.last_name].filter(Boolean).join(" ") || t("customer.unnamed");
  return (
    <Stack>
      <Group justify="space-between" align="flex-start">
        <div>
          <Title order={2}>{t("customer.title", { name })}</Title>
          <Text c="dimmed" size="sm">
            {c.customer_id} · {t("customer.status")}: <Badge component="span" variant="light">{c.status}</Badge> · {t("customer.created")}{" "}
            {fmtDay(c.created_at)}
          </Text>
        </div>
        {c.points && (
          <Group gap="xs" aria-label={t("customer.tabs.points")}>
            <Badge size="lg" color="teal">
              {t("customer.points.available")}: {fmtNumber(c.points.available)}
            </Badge>
            <Badge size="lg" color="yellow">
              {t("customer.points.pending")}: {fmtNumber(c.points.pending)}
            </Badge>
            {c.points.tier && <Badge size="lg">{c.points.tier}</Badge>}
          </Group>
        )}
      </Group>
      {c.requested_id !== c.customer_id && <Alert color="blue">{t("customer.mergedFrom", { id: c.requested_id })}</Alert>}
      <Tabs defaultValue="profile" keepMounted={false}>
        <Tabs.List>
          {TABS.map(([k]) => (
            <Tabs.Tab key={k} value={k}>
              {t(`customer.tabs.${k}`)}
            </Tabs.Tab>
          ))}
        </Tabs.List>
        {TABS.map(([k, panel]) => (
          <Tabs.Panel key={k} value={k} pt="md">
            {panel(c)}
          </Tabs.Panel>
        ))}
      </Tabs>
      {can(session, "privacy") && <PrivacyActions c={c} onChanged={onChanged} />}
    </Stack>
  );
}

/** The 360's tabs, in order: each one's key (its title in i18n) and panel. */
const TABS: ReadonlyArray<readonly [string, (c: Customer) => ReactNode]> = [
  ["profile", (c) => <ProfilePanel c={c} />],
  ["points", (c) => <PointsPanel id={c.customer_id} />],
  ["ledger", (c) => <LedgerPanel id={c.customer_id} />],
  ["timeline", (c) => <TimelinePanel id={c.customer_id} />],
  ["messages", (c) => <MessagesPanel id={c.customer_id} />],
  ["reservations", (c) => <ReservationsPanel id={c.customer_id} />],
];

function ProfilePanel({ c }: { c: Customer }) {
  const { t } = useTranslation();
  const fieldRows = PROFILE_FIELDS.filter((f) => c.profile[f] !== null).map((f) => {
    const src = c.profile.field_sources[f];
    return [
      t(`customer.fields.${f}`),
      String(c.profile[f]),
      src ? `${String(src.source)} · ${src.verified ? t("customer.verified") : t("customer.unverified")} · ${fmtDate(String(src.at))}` : "—",
    ];
  });
  return (
    <Stack>
      <DataTable caption={t("customer.profile")} head={[t("customer.field"), t("customer.value"), t("customer.source")]} rows={fieldRows} />
      <DataTable
        caption={t("customer.identifiers")}
        head={[t("customer.idType"), t("customer.idValue"), t("customer.idChannel"), t("customer.idAt")]}
        rows={c.identifiers.map((i) => [i.type, i.value, i.channel, fmtDate(i.attached_at)])}
      />
      <DataTable
        caption={t("customer.consents")}
        head={[t("customer.channel"), t("customer.consents"), t("customer.source"), t("customer.at")]}
        rows={Object.entries(c.consents).map(([ch, v]) => [
          ch,
          <Badge key={ch} color={v.granted ? "teal" : "red"} variant="light">
            {v.granted ? t("customer.granted") : t("customer.denied")}
          </Badge>,
          v.source,
          fmtDate(v.at),
        ])}
      />
    </Stack>
  );
}

function PointsPanel({ id }: { id: string }) {
  const { t } = useTranslation();
  const { api } = useAuth();
  const state = useLoad(() => api.get<PointsDetail>(`/customers/${enc(id)}/points`), [api, id]);
  return (
    <Show state={state}>
      {(p) => {
        const toNext = p.points_to_next_tier ?? 0;
        const q = p.qualifying_points_12m ?? 0;
        const pct = p.next_tier ? Math.min(100, (q / Math.max(1, q + toNext)) * 100) : 100;
        return (
          <Stack>
            <SimpleGrid cols={{ base: 2, md: 4 }}>
              {(
                [
                  ["available", p.available],
                  ["pending", p.pending],
                  ["debt", p.debt],
                  ["lifetime", p.lifetime_earned],
                ] as const
              ).map(([k, v]) => (
                <Card withBorder key={k}>
                  <Text size="sm" c="dimmed">
                    {t(`customer.points.${k}`)}
                  </Text>
                  <Text size="xl" fw={700} data-testid={`points-${k}`}>
                    {fmtNumber(v)}
                  </Text>
                </Card>
              ))}
            </SimpleGrid>
            <Card withBorder>
              <Text>
                {t("customer.points.tier")}: <b>{p.tier ?? "—"}</b> ·{" "}
                {p.next_tier ? t("customer.points.next", { points: fmtNumber(toNext), tier: p.next_tier }) : t("customer.points.top")}
              </Text>
              <Progress value={pct} mt="xs" aria-label={t("customer.points.tier")} />
            </Card>
            {p.lots.length === 0 ? (
              <Empty />
            ) : (
              <DataTable
                caption={t("customer.points.lots")}
                head={[
                  t("customer.points.order"),
                  t("customer.channel"),
                  t("customer.points.lotStatus"),
                  t("customer.ledger.points"),
                  t("customer.points.remaining"),
                  t("customer.points.pendingUntil"),
                  t("customer.points.expires"),
                ]}
                rows={p.lots.map((l) => [
                  l.order_id,
                  l.channel,
                  l.status,
                  fmtNumber(l.points),
                  fmtNumber(l.remaining),
                  l.status === "pending" ? fmtDay(l.pending_until) : "—",
                  fmtDay(l.expires_on),
                ])}
              />
            )}
          </Stack>
        );
      }}
    </Show>
  );
}

function LedgerPanel({ id }: { id: string }) {
  const { t } = useTranslation();
  const { api } = useAuth();
  const state = useLoad(() => api.get<LedgerPage>(`/customers/${enc(id)}/ledger`, { limit: "100" }), [api, id]);
  return (
    <Show state={state} empty={(l) => l.entries.length === 0}>
      {(l) => (
        <DataTable
          caption={t("customer.tabs.ledger")}
          head={[t("customer.ledger.at"), t("customer.ledger.kind"), t("customer.ledger.points"), t("customer.ledger.order"), t("customer.ledger.reason")]}
          rows={l.entries.map((e) => [
            fmtDate(e.at),
            e.kind,
            <Text key="p" c={e.points < 0 ? "red.8" : "teal.9"} fw={600}>
              {e.points > 0 ? "+" : ""}
              {fmtNumber(e.points)}
            </Text>,
            [e.order_id, e.channel].filter(Boolean).join(" · ") || "—",
            e.note || (e.rule_ids ?? []).join(", ") || "—",
          ])}
        />
      )}
    </Show>
  );
}

function describe(e: TimelineEntry): string {
  return Object.entries(e.summary)
    .map(([k, v]) => `${k}: ${v}`)
    .join(" · ");
}

function TimelinePanel({ id }: { id: string }) {
  const { t } = useTranslation();
  const { api } = useAuth();
  const [pages, setPages] = useState<TimelineEntry[]>([]);
  const [before, setBefore] = useState<string | null>(null);
  const [more, setMore] = useState<{ busy: boolean; error: unknown }>({ busy: false, error: null });
  const state = useLoad(async () => {
    const page = await api.get<TimelinePage>(`/customers/${enc(id)}/timeline`, { limit: "50" });
    setPages([]);
    setBefore(page.next_before);
    return page;
  }, [api, id]);

  async function older() {
    if (!before) return;
    setMore({ busy: true, error: null });
    try {
      const page = await api.get<TimelinePage>(`/customers/${enc(id)}/timeline`, { limit: "50", before });
      setPages((p) => [...p, ...page.entries]);
      setBefore(page.next_before);
      setMore({ busy: false, error: null });
    } catch (err) {
      setMore({ busy: false, error: err });
    }
  }

  return (
    <Show state={state} empty={(p) => p.entries.length === 0}>
      {(p) => (
        <Stack>
          <DataTable
            caption={t("customer.tabs.timeline")}
            head={[t("customer.timeline.at"), t("customer.timeline.channel"), t("customer.timeline.type"), t("customer.timeline.details")]}
            rows={[...p.entries, ...pages].map((e) => [fmtDate(e.occurred_at), e.channel ?? e.entity, e.type, describe(e)])}
          />
          {more.error !== null && <ErrorState error={more.error} />}
          {before && (
            <Button variant="light" onClick={() => void older()} loading={more.busy} w="fit-content">
              {t("customer.timeline.more")}
            </Button>
          )}
        </Stack>
      )}
    </Show>
  );
}

function MessagesPanel({ id }: { id: string }) {
  const { t } = useTranslation();
  const { api } = useAuth();
  const state = useLoad(() => api.get<NotificationPage>(`/customers/${enc(id)}/notifications`), [api, id]);
  return (
    <Show state={state} empty={(n) => n.history.length === 0}>
      {(n) => (
        <DataTable
          caption={t("customer.tabs.messages")}
          head={[t("customer.messages.at"), t("customer.messages.intent"), t("customer.messages.channel"), t("customer.messages.status"), t("customer.messages.reason")]}
          rows={n.history.map((m) => [
            fmtDate(m.at),
            m.intent,
            m.channel ?? "—",
            <Badge key="s" variant="light" color={m.status === "sent" ? "teal" : m.status === "suppressed" ? "red" : "gray"}>
              {m.status}
            </Badge>,
            m.reason ?? "—",
          ])}
        />
      )}
    </Show>
  );
}

function ReservationsPanel({ id }: { id: string }) {
  const { t } = useTranslation();
  const { api, session } = useAuth();
  const [done, setDone] = useState<Record<string, Reservation>>({});
  const [err, setErr] = useState<unknown>(null);
  const state = useLoad(async () => {
    const doc = await api.get<{ reservations: Reservation[] } | Reservation[]>(`/customers/${enc(id)}/reservations`);
    return Array.isArray(doc) ? doc : doc.reservations;
  }, [api, id]);
  if (state.error instanceof ApiError && state.error.status === 404 && state.error.code === "route_not_found") {
    return <Empty>{t("customer.reservations.unavailable")}</Empty>;
  }
  async function collect(r: Reservation) {
    setErr(null);
    try {
      const out = await api.post<Reservation>(`/reservations/${enc(r.reservation_id)}/collect`);
      setDone((d) => ({ ...d, [r.reservation_id]: out }));
    } catch (e) {
      setErr(e);
    }
  }
  const mine = session?.storeId;
  return (
    <Show state={state} empty={(l) => l.length === 0}>
      {(list) => (
        <Stack>
          {err !== null && <ErrorState error={err} />}
          <DataTable
            caption={t("customer.tabs.reservations")}
            head={[
              t("customer.reservations.id"),
              t("customer.reservations.sku"),
              t("customer.reservations.store"),
              t("customer.reservations.quantity"),
              t("customer.reservations.status"),
              t("customer.reservations.hold"),
              t("customer.actions"),
            ]}
            rows={list.map((r0) => {
              const r = done[r0.reservation_id] ?? r0;
              const here = !mine || r.location_id === mine;
              const mayCollect = can(session, "reservations");
              return [
                r.reservation_id,
                r.sku,
                r.location_id,
                r.quantity,
                <Badge key="s" variant="light">
                  {r.status}
                </Badge>,
                fmtDate(r.hold_until),
                COLLECTABLE.has(r.status) && here && mayCollect ? (
                  <Button key="c" size="xs" onClick={() => void collect(r)} aria-label={`${t("customer.reservations.collect")} ${r.reservation_id}`}>
                    {t("customer.reservations.collect")}
                  </Button>
                ) : r.status === "collected" ? (
                  t("customer.reservations.collected")
                ) : !here ? (
                  t("customer.reservations.otherStore")
                ) : (
                  "—"
                ),
              ];
            })}
          />
        </Stack>
      )}
    </Show>
  );
}

function PrivacyActions({ c, onChanged }: { c: Customer; onChanged: () => void }) {
  const { t } = useTranslation();
  const { api, session } = useAuth();
  const navigate = useNavigate();
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState("");
  const [msg, setMsg] = useState<string | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const word = t("customer.eraseConfirm").split(" ").pop() ?? "ERASE";

  async function unmerge() {
    setErr(null);
    setBusy(true);
    try {
      const r = await api.post<{ merge_id: string; restored_ids: string[] }>(`/customers/${enc(c.customer_id)}/unmerge`, {});
      setMsg(t("customer.unmergeDone", { merge: r.merge_id, ids: r.restored_ids.join(", ") }));
      onChanged();
    } catch (e) {
      setErr(e);
    } finally {
      setBusy(false);
    }
  }
  async function erase() {
    setErr(null);
    setBusy(true);
    try {
      const r = await api.del<{ items_removed: number }>(`/customers/${enc(c.customer_id)}`);
      setOpen(false);
      setMsg(t("customer.eraseDone", { items: r.items_removed }));
      navigate("/customers", { replace: true, state: { flash: t("customer.eraseDone", { items: r.items_removed }) } });
    } catch (e) {
      setOpen(false);
      setErr(e);
    } finally {
      setBusy(false);
    }
  }
  return (
    <Card withBorder>
      <Title order={3} size="h4" mb="sm">
        {t("customer.actions")}
      </Title>
      {msg && (
        <Alert color="teal" role="status" mb="sm">
          {msg}
        </Alert>
      )}
      {err !== null && <ErrorState error={err} />}
      <Group mt="sm">
        {c.merges.length > 0 && can(session, "reviews") && (
          <Button variant="default" onClick={() => void unmerge()} loading={busy}>
            {t("customer.unmerge")}
          </Button>
        )}
        <Button color="red" variant="outline" onClick={() => setOpen(true)}>
          {t("customer.erase")}
        </Button>
      </Group>
      <Modal opened={open} onClose={() => setOpen(false)} title={t("customer.eraseTitle")}>
        <Stack>
          <Text>{t("customer.eraseBody", { id: c.customer_id })}</Text>
          <TextInput label={t("customer.eraseConfirm")} value={typed} onChange={(e) => setTyped(e.currentTarget.value)} />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setOpen(false)}>
              {t("customer.cancel")}
            </Button>
            <Button color="red" disabled={typed.trim() !== word} loading={busy} onClick={() => void erase()}>
              {t("customer.confirm")}
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Card>
  );
}

