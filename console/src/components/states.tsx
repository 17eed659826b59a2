import { Alert, Button, Center, Loader, Stack, Text } from "@mantine/core";
import { useCallback, useEffect, useState, type ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { ApiError } from "../api";
import { useAuth } from "../auth/context";

export type Loaded<T> = { data: T | null; error: unknown; loading: boolean; reload: () => void };

/** Run `load` now and whenever `deps` change; the screen renders loading / error / data. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const run = useCallback(load, deps);
  useEffect(() => {
    let live = true;
    setLoading(true);
    setError(null);
    run().then(
      (d) => {
        if (live) {
          setData(d);
          setLoading(false);
        }
      },
      (e: unknown) => {
        if (live) {
          setError(e);
          setData(null);
          setLoading(false);
        }
      },
    );
    return () => {
      live = false;
    };
  }, [run, tick]);
  return { data, error, loading, reload: () => setTick((t) => t + 1) };
}

export function Loading() {
  const { t } = useTranslation();
  return (
    <Center p="xl" role="status" aria-live="polite">
      <Loader size="sm" mr="sm" aria-hidden />
      <Text>{t("state.loading")}</Text>
    </Center>
  );
}

export function Empty({ children }: { children?: ReactNode }) {
  const { t } = useTranslation();
  return (
    <Text c="dimmed" p="md" role="status">
      {children ?? t("state.empty")}
    </Text>
  );
}

/** An API error said in words: 403 names the role, 404 says not found, network says retry. */
export function ErrorState({ error, onRetry, notFound }: { error: unknown; onRetry?: () => void; notFound?: string }) {
  const { t } = useTranslation();
  const { session } = useAuth();
  let message: string;
  if (error instanceof ApiError && error.status === 403) {
    message = t("state.forbidden", { roles: session?.roles.join(", ") || "-" });
  } else if (error instanceof ApiError && error.status === 404) {
    message = notFound ?? t("state.notFound");
  } else if (error instanceof ApiError && error.status === 0) {
    message = t("state.network");
  } else {
    message = t("state.error", { message: error instanceof Error ? error.message : String(error) });
  }
  return (
    <Alert color="red" role="alert" title={error instanceof ApiError && error.status ? `${error.status} ${error.code}` : undefined}>
      <Stack gap="xs" align="flex-start">
        <Text>{message}</Text>
        {onRetry && (
          <Button variant="light" color="red" onClick={onRetry}>
            {t("state.retry")}
          </Button>
        )}
      </Stack>
    </Alert>
  );
}

export function Show<T>({ state, children, notFound, empty }: { state: Loaded<T>; children: (d: T) => ReactNode; notFound?: string; empty?: (d: T) => boolean }) {
  if (state.loading) return <Loading />;
  if (state.error) return <ErrorState error={state.error} onRetry={state.reload} notFound={notFound} />;
  if (state.data === null || (empty && empty(state.data))) return <Empty />;
  return <>{children(state.data)}</>;
}
