import { Alert, Badge, Button, Card, Group, List, SegmentedControl, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { enc } from "../api";
import { useAuth } from "../auth/context";
import { ErrorState, Show, useLoad } from "../components/states";
import { fmtDate } from "../format";
import type { Customer, MergeReview, ReviewPage } from "../types";

export function MergeReviews() {
  const { t } = useTranslation();
  const { api } = useAuth();
  const [status, setStatus] = useState("pending");
  const state = useLoad(() => api.get<ReviewPage>("/merge-reviews", { status }), [api, status]);
  return (
    <Stack>
      <Title order={2}>{t("reviews.title")}</Title>
      <SegmentedControl
        aria-label={t("reviews.status")}
        value={status}
        onChange={setStatus}
        data={["pending", "approved", "rejected"].map((s) => ({ value: s, label: t(`reviews.${s}`) }))}
        w="fit-content"
      />
      <Show state={state} empty={(p) => p.reviews.length === 0}>
        {(p) => (
          <Stack>
            {p.reviews.map((r) => (
              <ReviewCard key={r.review_id} review={r} onDecided={state.reload} />
            ))}
          </Stack>
        )}
      </Show>
    </Stack>
  );
}

function ReviewCard({ review: r, onDecided }: { review: MergeReview; onDecided: () => void }) {
  const { t } = useTranslation();
  const { api } = useAuth();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  async function decide(decision: "approve" | "reject") {
    setBusy(true);
    setError(null);
    try {
      await api.post(`/merge-reviews/${enc(r.review_id)}`, { decision });
      onDecided();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  return (
    <Card withBorder component="article" aria-label={r.review_id}>
      <Stack gap="sm">
        <Group justify="space-between">
          <Text fw={600}>{r.review_id}</Text>
          <Badge variant="light">{r.status}</Badge>
        </Group>
        <Text size="sm">{t("reviews.via", { channel: r.channel, types: r.identifier_types.join(", ") })} · {fmtDate(r.created_at)}</Text>
        <Alert color="yellow" title={t("reviews.problems")}>
          <List size="sm">
            {r.problems.map((p) => (
              <List.Item key={p}>{p}</List.Item>
            ))}
          </List>
        </Alert>
        <SimpleGrid cols={{ base: 1, sm: r.customer_ids.length > 1 ? 2 : 1 }}>
          {r.customer_ids.map((id) => (
            <ReviewCustomer key={id} id={id} survivor={id === r.survivor_id} />
          ))}
        </SimpleGrid>
        {error !== null && <ErrorState error={error} />}
        {r.status === "pending" ? (
          <Group>
            <Button color="teal" loading={busy} onClick={() => void decide("approve")}>
              {t("reviews.approve")}
            </Button>
            <Button color="red" variant="outline" loading={busy} onClick={() => void decide("reject")}>
              {t("reviews.reject")}
            </Button>
          </Group>
        ) : (
          <Text size="sm">{t("reviews.decided", { by: r.decided_by ?? "—", at: fmtDate(r.decided_at) })}</Text>
        )}
      </Stack>
    </Card>
  );
}

function ReviewCustomer({ id, survivor }: { id: string; survivor: boolean }) {
  const { t } = useTranslation();
  const { api } = useAuth();
  const state = useLoad(() => api.get<Customer>(`/customers/${enc(id)}`), [api, id]);
  return (
    <Card withBorder bg={survivor ? "var(--mantine-color-blue-light)" : undefined}>
      <Text fw={600}>
        {t("reviews.customer", { id })} {survivor && <Badge component="span" size="sm">{t("reviews.survivor")}</Badge>}
      </Text>
      {state.error ? (
        <ErrorState error={state.error} />
      ) : (
        <Show state={state}>
          {(c) => (
            <Stack gap={2} mt="xs">
              <Text>{[c.profile.first_name, c.profile.last_name].filter(Boolean).join(" ") || t("customer.unnamed")}</Text>
              {c.identifiers.map((i) => (
                <Text key={`${i.type}:${i.value}`} size="sm">
                  {i.type}: {i.value} <Text span c="dimmed">({i.channel})</Text>
                </Text>
              ))}
              {c.points && (
                <Text size="sm">
                  {t("customer.points.available")}: {c.points.available} · {t("customer.points.pending")}: {c.points.pending}
                </Text>
              )}
            </Stack>
          )}
        </Show>
      )}
    </Card>
  );
}
