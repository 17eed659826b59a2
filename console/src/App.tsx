import { Stack, Text, Title } from "@mantine/core";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { Navigate, Route, Routes, useNavigate } from "react-router-dom";
import { useAuth } from "./auth/context";
import { oidcCallback } from "./auth/oidc";
import { can, homeOf, type Area } from "./auth/session";
import { ErrorState, Loading } from "./components/states";
import { Collect } from "./screens/Collect";
import { Customer360 } from "./screens/Customer360";
import { FindCustomer } from "./screens/FindCustomer";
import { Kpis } from "./screens/Kpis";
import { AREA_PATHS, Layout } from "./screens/Layout";
import { MergeReviews } from "./screens/MergeReviews";
import { PointsRules } from "./screens/PointsRules";
import { SignIn } from "./screens/SignIn";
import { Stock } from "./screens/Stock";

function Guard({ area, children }: { area: Area; children: React.ReactNode }) {
  const { t } = useTranslation();
  const { session } = useAuth();
  if (!can(session, area)) {
    return (
      <Text role="alert" c="red.8">
        {t("state.forbidden", { roles: session?.roles.join(", ") || "-" })}
      </Text>
    );
  }
  return <>{children}</>;
}

function Privacy() {
  const { t } = useTranslation();
  return (
    <Stack>
      <Title order={2}>{t("privacy.title")}</Title>
      <Text>{t("privacy.body")}</Text>
      <FindCustomer />
    </Stack>
  );
}

function Callback() {
  const { config, signIn } = useAuth();
  const navigate = useNavigate();
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (config.auth.mode !== "oidc") return;
    oidcCallback(config.auth).then(
      (s) => {
        signIn(s);
        navigate("/", { replace: true });
      },
      (e: unknown) => setError(e),
    );
  }, [config, signIn, navigate]);
  return error ? <ErrorState error={error} /> : <Loading />;
}

export function App() {
  const { session } = useAuth();
  if (!session) {
    return (
      <Routes>
        <Route path="/callback" element={<Callback />} />
        <Route path="*" element={<SignIn />} />
      </Routes>
    );
  }
  const home = AREA_PATHS[homeOf(session.roles) ?? "customers"];
  return (
    <Routes>
      <Route element={<Layout />}>
        <Route path="/customers" element={<Guard area="customers"><FindCustomer /></Guard>} />
        <Route path="/customers/:id" element={<Guard area="customers"><Customer360 /></Guard>} />
        <Route path="/reservations" element={<Guard area="reservations"><Collect /></Guard>} />
        <Route path="/stock" element={<Guard area="stock"><Stock /></Guard>} />
        <Route path="/merge-reviews" element={<Guard area="reviews"><MergeReviews /></Guard>} />
        <Route path="/points-rules" element={<Guard area="rules"><PointsRules /></Guard>} />
        <Route path="/kpis" element={<Guard area="kpis"><Kpis /></Guard>} />
        <Route path="/privacy" element={<Guard area="privacy"><Privacy /></Guard>} />
        <Route path="*" element={<Navigate to={home} replace />} />
      </Route>
    </Routes>
  );
}
