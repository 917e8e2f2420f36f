// Two languages, zh-CN and en; the choice is remembered in localStorage.
const KEY = "orderdesk.lang";
export const LANGUAGES = ["zh-CN", "en"];

export function initialLanguage() {
  const saved = localStorage.getItem(KEY);
  if (LANGUAGES.includes(saved)) return saved;
  return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

export function rememberLanguage(lang) {
  localStorage.setItem(KEY, lang);
  document.documentElement.lang = lang;
}

/** A translator for one language: t("cart.count", {n: 2}) fills {n} in the message. */
export function translator(messages, lang) {
  const table = messages[lang] || messages.en;
  return (key, params) => {
    let text = table[key] ?? messages.en[key] ?? key;
    if (typeof text === "function") return text(params || {});
    if (params) text = text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
    return text;
  };
}

/** The text of a {"zh-CN", "en"} pair in the current language. */
export function localized(pair, lang) {
  if (!pair) return "";
  return pair[lang] || pair.en || pair["zh-CN"] || "";
}

export function formatDate(iso, lang, withTime = false) {
  if (!iso) return "";
  const options = withTime
    ? { dateStyle: "medium", timeStyle: "short", timeZone: "Asia/Shanghai" }
    : { dateStyle: "medium", timeZone: "Asia/Shanghai" };
  return new Intl.DateTimeFormat(lang, options).format(new Date(iso));
}
