import "@mantine/core/styles.css";
import "./styles.css";
import { MantineProvider } from "@mantine/core";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router-dom";
import { App } from "./App";
import { AuthProvider } from "./auth/context";
import { loadConfig, type ConsoleConfig } from "./config";
import "./i18n";
import i18n from "./i18n";
import { theme } from "./theme";

const root = createRoot(document.getElementById("root")!);

function render(config: ConsoleConfig) {
  root.render(
    <StrictMode>
      <MantineProvider theme={theme}>
        <BrowserRouter basename={import.meta.env.BASE_URL.replace(/\/$/, "")}>
          <AuthProvider config={config}>
            <App />
          </AuthProvider>
        </BrowserRouter>
      </MantineProvider>
    </StrictMode>,
  );
}

loadConfig().then(render, (err: unknown) => {
  root.render(
    <MantineProvider theme={theme}>
      <main id="main" role="alert" style={{ padding: "2rem" }}>
        {i18n.t("signin.configError", { reason: err instanceof Error ? err.message : String(err) })}
      </main>
    </MantineProvider>,
  );
});
