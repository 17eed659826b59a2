import { createTheme } from "@mantine/core";

// Darker primary shades than the default so text on filled buttons and links keeps >= 4.5:1.
export const theme = createTheme({
  primaryColor: "blue",
  primaryShade: { light: 8, dark: 5 },
  defaultRadius: "md",
  fontSizes: { md: "1rem" },
  focusRing: "always",
});
