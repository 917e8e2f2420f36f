// ops and finance: the last 14 days of orders, revenue and low-stock alerts, as SVG charts.
import { html } from "../../common/html.js";
import { BarChart, ErrorText, Loading, money, useLoad } from "../ui.js";

export function DashboardPage({ api, t }) {
  const board = useLoad(() => api.get("/ops/dashboard", { query: { days: 14 } }), []);
  if (board.error) return html`<h1>${t("dashboard.title")}</h1><${ErrorText} error=${board.error} t=${t} />`;
  if (!board.data) return html`<h1>${t("dashboard.title")}</h1><${Loading} t=${t} />`;
  const days = board.data.days;
  const label = (d) => d.date.slice(5);
  const total = days.reduce((n, d) => n + d.revenue.amount, 0);
  const currency = days[0]?.revenue.currency || "CNY";
  return html`<h1>${t("dashboard.title")}</h1>
    <dl class="facts panel">
      <dt>${t("dashboard.orders14")}</dt><dd>${days.reduce((n, d) => n + d.orders, 0)}</dd>
      <dt>${t("dashboard.revenue14")}</dt><dd>${money({ amount: total, currency })}</dd>
      <dt>${t("dashboard.alerts14")}</dt><dd>${days.reduce((n, d) => n + d.low_stock_alerts_opened, 0)}</dd>
    </dl>
    <div class="charts">
      <${BarChart} title=${t("dashboard.revenue")} points=${days.map((d) => ({ label: label(d), value: d.revenue.amount, text: money(d.revenue) }))} />
      <${BarChart} title=${t("dashboard.orders")} points=${days.map((d) => ({ label: label(d), value: d.orders }))} />
      <${BarChart} title=${t("dashboard.alerts")} alt=${true} points=${days.map((d) => ({ label: label(d), value: d.low_stock_alerts_opened }))} />
    </div>`;
}
