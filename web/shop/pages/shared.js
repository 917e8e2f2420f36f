// Small pieces several shop pages use.
import { html, useEffect, useState } from "../../common/html.js";
import { localized } from "../../common/i18n.js";

const CITY_KEY = "orderdesk.city";

/** Load something once per key; {data, error, loading, reload}. */
export function useLoad(fn, keys) {
  const [state, setState] = useState({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    Promise.resolve()
      .then(fn)
      .then((data) => live && setState({ data, loading: false }), (error) => live && setState({ error, loading: false }));
    return () => (live = false);
  }, [...keys, tick]);
  return { ...state, reload: () => setTick((n) => n + 1) };
}

export function Problem({ error, t }) {
  if (!error) return null;
  let text = error.message;
  if (error.code === "out_of_stock") {
    const d = error.details || {};
    text = t("error.out_of_stock", { sku: d.sku ?? "", n: d.available ?? 0 });
  }
  return html`<p class="error" role="alert">${t("error.generic", { message: text })}</p>`;
}

/** A product picture: its first image, else a drawn placeholder in the category's colour. */
export function Picture({ product, lang, t, eager = false }) {
  const name = localized(product.name, lang);
  const src = product.images && product.images[0];
  if (src) {
    return html`<img class="pic" src=${src} alt=${t("product.image", { name })} loading=${eager ? "eager" : "lazy"} />`;
  }
  const hue = [...(product.category || "x")].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 360, 7);
  return html`<svg class="pic" viewBox="0 0 120 90" role="img" aria-label=${t("product.image", { name })}>
    <rect width="120" height="90" fill=${`hsl(${hue} 45% 88%)`} />
    <text x="60" y="54" text-anchor="middle" font-size="26" fill=${`hsl(${hue} 50% 28%)`}>${[...name][0] || "?"}</text>
  </svg>`;
}

export function chosenCity() {
  try {
    return JSON.parse(localStorage.getItem(CITY_KEY) || "null");
  } catch {
    return null;
  }
}

export function chooseCity(city) {
  localStorage.setItem(CITY_KEY, JSON.stringify(city));
}

let citiesLoad = null;
export function loadCities(api) {
  citiesLoad ??= api.get("/cities", { auth: false }).then((r) => r.items, () => []);
  return citiesLoad;
}

export function StatusPill({ status, t }) {
  return html`<span class="status-pill">${t(`status.${status}`)}</span>`;
}

/** A rating as five stars filled to `value` (0–5), read out as "4.5 of 5 stars". */
export function Stars({ value, t, label }) {
  const filled = Math.max(0, Math.min(5, Number(value) || 0));
  return html`<span class="stars" role="img" aria-label=${label || t("rating.stars", { n: filled })}>
    <span class="stars-bg" aria-hidden="true">★★★★★</span>
    <span class="stars-fg" aria-hidden="true" style=${`width:${(filled / 5) * 100}%`}>★★★★★</span>
  </span>`;
}

/** Upload one file through POST /uploads (a presigned S3 POST); its upload id. */
export async function uploadPhoto(api, file) {
  const ticket = await api.post("/uploads", { content_type: file.type, bytes: file.size });
  const form = new FormData();
  for (const [name, value] of Object.entries(ticket.fields)) form.append(name, value);
  form.append("file", file);
  const answer = await fetch(ticket.url, { method: "POST", body: form });
  if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
  return ticket.upload_id;
}
