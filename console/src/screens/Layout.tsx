import { Anchor, AppShell, Burger, Button, Group, NavLink, Stack, Text, Title } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { useTranslation } from "react-i18next";
import { NavLink as RouterLink, Outlet, useLocation } from "react-router-dom";
import { useAuth } from "../auth/context";
import { oidcSignOut } from "../auth/oidc";
import { areasOf, type Area } from "../auth/session";
import { LanguageSwitch } from "../components/LanguageSwitch";

export const AREA_PATHS: Record<Area, string> = {
  customers: "/customers",
  reservations: "/reservations",
  stock: "/stock",
  reviews: "/merge-reviews",
  rules: "/points-rules",
  kpis: "/kpis",
  privacy: "/privacy",
};

export function Layout() {
  const { t } = useTranslation();
  const { session, signOut, config } = useAuth();
  const [opened, { toggle, close }] = useDisclosure();
  const location = useLocation();
  const areas = session ? areasOf(session.roles) : [];

  async function out() {
    signOut();
    if (config.auth.mode === "oidc") await oidcSignOut(config.auth);
  }

  return (
    <AppShell header={{ height: 60 }} navbar={{ width: 240, breakpoint: "sm", collapsed: { mobile: !opened } }} padding="md">
      <Anchor href="#main" className="skip-link">
        {t("app.skip")}
      </Anchor>
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label={t("app.nav")} />
            <Title order={1} size="h4">
              {t("app.title")}
            </Title>
          </Group>
          <Group wrap="nowrap" gap="sm">
            <Text size="sm" visibleFrom="md">
              {t("app.signedInAs", { email: session?.email })}
              {session?.storeId ? ` · ${t("app.store", { store: session.storeId })}` : ""}
            </Text>
            <LanguageSwitch />
            <Button variant="default" onClick={() => void out()}>
              {t("app.signOut")}
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" component="nav" aria-label={t("app.nav")}>
        <Stack gap={4}>
          {areas.map((a) => (
            <NavLink
              key={a}
              component={RouterLink}
              to={AREA_PATHS[a]}
              label={t(`nav.${a}`)}
              active={location.pathname.startsWith(AREA_PATHS[a])}
              onClick={close}
            />
          ))}
        </Stack>
      </AppShell.Navbar>
      <AppShell.Main id="main" tabIndex={-1}>
        <Outlet />
      </AppShell.Main>
    </AppShell>
  );
}
