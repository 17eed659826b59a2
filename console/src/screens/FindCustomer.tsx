import { Button, Group, Paper, Select, Stack, Text, TextInput, Title } from "@mantine/core";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useNavigate } from "react-router-dom";
import { ApiError } from "../api";
import { useAuth } from "../auth/context";
import { ErrorState } from "../components/states";
import type { Customer } from "../types";

export const ID_TYPES = ["card", "phone", "email", "device", "handle"] as const;
type IdType = (typeof ID_TYPES)[number];

export function FindCustomer() {
  const { t } = useTranslation();
  const { api } = useAuth();
  const navigate = useNavigate();
  const [type, setType] = useState<IdType>("card");
  const [value, setValue] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const v = value.trim();
    if (!v) return;
    setBusy(true);
    setError(null);
    try {
      const c = await api.get<Customer>("/customers", { [type]: v });
      navigate(`/customers/${encodeURIComponent(c.customer_id)}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Stack maw={560}>
      <Title order={2}>{t("find.title")}</Title>
      <Paper withBorder p="md">
        <form onSubmit={submit} role="search" aria-label={t("find.title")}>
          <Stack>
            <Select
              label={t("find.by")}
              value={type}
              onChange={(v) => v && setType(v as IdType)}
              data={ID_TYPES.map((k) => ({ value: k, label: t(`find.types.${k}`) }))}
              allowDeselect={false}
            />
            <TextInput
              label={t("find.value")}
              description={t("find.hint")}
              value={value}
              onChange={(e) => setValue(e.currentTarget.value)}
              inputMode={type === "card" ? "numeric" : type === "phone" ? "tel" : type === "email" ? "email" : "text"}
              autoComplete="off"
              autoFocus
              required
              size="md"
            />
            <Group>
              <Button type="submit" loading={busy} size="md">
                {t("find.submit")}
              </Button>
            </Group>
          </Stack>
        </form>
      </Paper>
      {error !== null &&
        (error instanceof ApiError && error.status === 404 ? (
          <Text role="alert">{t("find.notFound")}</Text>
        ) : (
          <ErrorState error={error} />
        ))}
    </Stack>
  );
}
