import { Alert, Button, Center, Paper, PasswordInput, Stack, TextInput, Title } from "@mantine/core";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useAuth } from "../auth/context";
import { oidcSignIn } from "../auth/oidc";
import { passwordSignIn, SignInError } from "../auth/password";
import { LanguageSwitch } from "../components/LanguageSwitch";

export function SignIn() {
  const { t } = useTranslation();
  const { config, signIn, expired } = useAuth();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      if (config.auth.mode === "password") {
        signIn(await passwordSignIn(config.auth, email.trim(), password));
      } else {
        await oidcSignIn(config.auth);
      }
    } catch (err) {
      if (err instanceof SignInError && (err.code === "NotAuthorizedException" || err.code === "UserNotFoundException")) {
        setError(t("signin.badCredentials"));
      } else {
        setError(t("signin.failed", { reason: err instanceof Error ? err.message : String(err) }));
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <Center mih="100vh" p="md" component="main" id="main">
      <Paper withBorder shadow="sm" p="xl" w="100%" maw={420}>
        <form onSubmit={submit} aria-labelledby="signin-title">
          <Stack>
            <Title order={1} size="h2" id="signin-title">
              {t("signin.title")}
            </Title>
            {expired && (
              <Alert color="yellow" role="alert">
                {t("signin.expired")}
              </Alert>
            )}
            {config.auth.mode === "password" ? (
              <>
                <TextInput
                  label={t("signin.email")}
                  type="email"
                  autoComplete="username"
                  required
                  value={email}
                  onChange={(e) => setEmail(e.currentTarget.value)}
                />
                <PasswordInput
                  label={t("signin.password")}
                  autoComplete="current-password"
                  visibilityToggleButtonProps={{ "aria-label": t("signin.showPassword") }}
                  required
                  value={password}
                  onChange={(e) => setPassword(e.currentTarget.value)}
                />
              </>
            ) : null}
            {error && (
              <Alert color="red" role="alert">
                {error}
              </Alert>
            )}
            <Button type="submit" loading={busy} size="md">
              {config.auth.mode === "password" ? t("signin.submit") : t("signin.hosted")}
            </Button>
            <LanguageSwitch />
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
