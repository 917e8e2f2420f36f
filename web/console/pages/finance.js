// finance: a day's reports (headline, charts, CSV downloads) and payment reconciliation.
import { html, useState } from "../../common/html.js";
import { formatDate } from "../../common/i18n.js";
import { BarChart, ErrorText, Loading, RankChart, money, useLoad } from "../ui.js";

/** Yesterday in business time (Asia/Shanghai), as YYYY-MM-DD. */
export function yesterday() {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" }).format(new Date(Date.now() - 86400000));
  return parts;
}

function DatePicker({ t, day, setDay }) {
  return html`<form class="row" onSubmit=${(e) => (e.preventDefault(), setDay(new FormData(e.currentTarget).get("date")))}>
    <label>${t("reports.date")}<input type="date" name="date" required value=${day} /></label>
    <button>${t("reports.show")}</button>
  </form>`;
}

export function ReportsPage({ api, t, lang, query }) {
  const [day, setDay] = useState(query.get("date") || yesterday());
  const files = useLoad(() => api.get("/reports", { query: { date: day } }), [day]);
  const summary = useLoad(() => api.get(`/reports/${day}/summary`), [day]);
  const charts = summary.data?.charts || {};
  const headline = summary.data?.headline || {};
  return html`<h1>${t("reports.title")}</h1>
    <${DatePicker} t=${t} day=${day} setDay=${setDay} />
    <${ErrorText} error=${summary.error} t=${t} />
    ${summary.loading && !summary.data && html`<${Loading} t=${t} />`}
    ${summary.data && html`<h2>${t("reports.headline", { date: formatDate(day + "T12:00:00+08:00", lang) })}</h2>
      <dl class="facts panel">${Object.entries(headline).map(([k, v]) => html`<dt>${headlineLabel(t, k)}</dt><dd>${headlineValue(k, v, headline.currency)}</dd>`)}</dl>
      <div class="charts">
        <${BarChart} title=${t("reports.revenueByHour")} points=${(charts.revenue_by_hour || []).map((p) => ({ label: String(p.hour), value: p.revenue_minor, text: money({ amount: p.revenue_minor, currency: p.currency }) }))} />
        <${RankChart} title=${t("reports.topProducts")} points=${(charts.top_products || []).slice(0, 10).map((p) => ({ label: p.name || p.sku, value: p.revenue_minor, text: money({ amount: p.revenue_minor, currency: p.currency }) }))} />
        <${RankChart} title=${t("reports.stockCover")} points=${(charts.stock_cover || []).slice(0, 10).map((p) => ({ label: p.name || p.sku, value: p.days_of_cover, text: t("reports.days", { n: p.days_of_cover }) }))} />
      </div>`}
    <h2>${t("reports.files")}</h2>
    <${ErrorText} error=${files.error} t=${t} />
    ${files.data && html`<table>
      <thead><tr><th scope="col">${t("reports.area")}</th><th scope="col">${t("reports.table")}</th><th scope="col" class="num">${t("reports.rows")}</th><th scope="col">${t("reports.download")}</th></tr></thead>
      <tbody>${files.data.items.map((f) => html`<tr><td>${t("area." + f.area)}</td><td>${f.table}</td><td class="num">${f.rows}</td>
        <td><a href=${f.url} download=${`${f.table}-${day}.${f.format}`} data-table=${f.table} data-format=${f.format}>${t("reports.downloadAs", { format: f.format.toUpperCase(), table: f.table })}</a></td></tr>`)}</tbody>
    </table>`}`;
}

function headlineLabel(t, key) {
  const label = t("headline." + key);
  return label.startsWith("headline.") ? key : label;
}

function headlineValue(key, value, currency) {
  if (key.endsWith("_minor") && typeof value === "number") return money({ amount: value, currency: currency || "CNY" });
  if (value && typeof value === "object") return JSON.stringify(value);
  return String(value ?? "");
}

export function ReconciliationPage({ api, t, query }) {
  const [day, setDay] = useState(query.get("date") || yesterday());
  const report = useLoad(() => api.get("/ops/reconciliation", { query: { date: day } }), [day]);
  const providers = Object.entries(report.data?.providers || {});
  return html`<h1>${t("recon.title")}</h1>
    <${DatePicker} t=${t} day=${day} setDay=${setDay} />
    <${ErrorText} error=${report.error} t=${t} />
    ${report.loading && !report.data && html`<${Loading} t=${t} />`}
    ${report.data && html`
      <h2>${t("recon.providers")}</h2>
      <table><thead><tr><th scope="col">${t("recon.provider")}</th><th scope="col">${t("recon.figures")}</th></tr></thead>
        <tbody>${providers.map(([name, figures]) => html`<tr><td>${name}</td><td>${typeof figures === "object" ? Object.entries(figures).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(" · ") : String(figures)}</td></tr>`)}</tbody></table>
      <h2>${t("recon.discrepancies", { n: report.data.items.length })}</h2>
      <table><thead><tr><th scope="col">${t("recon.provider")}</th><th scope="col">${t("recon.kind")}</th><th scope="col">${t("recon.type")}</th><th scope="col">${t("recon.reference")}</th>
        <th scope="col" class="num">${t("recon.ours")}</th><th scope="col" class="num">${t("recon.theirs")}</th></tr></thead>
        <tbody>${report.data.items.map((d) => html`<tr><td>${d.provider}</td><td>${t("recon." + d.kind)}</td><td>${d.type}</td><td>${d.reference || d.provider_reference || ""}</td>
          <td class="num">${d.ours ? money(d.ours) : "–"}</td><td class="num">${d.theirs ? money(d.theirs) : "–"}</td></tr>`)}</tbody></table>
      ${report.data.items.length === 0 && html`<p class="notice">${t("recon.clean")}</p>`}`}`;
}
