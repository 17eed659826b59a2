import { SegmentedControl } from "@mantine/core";
import { useTranslation } from "react-i18next";

export function LanguageSwitch() {
  const { t, i18n } = useTranslation();
  return (
    <SegmentedControl
      aria-label={t("app.language")}
      value={i18n.language.slice(0, 2)}
      onChange={(lng) => void i18n.changeLanguage(lng)}
      data={[
        { value: "es", label: "Español" },
        { value: "en", label: "English" },
      ]}
    />
  );
}
