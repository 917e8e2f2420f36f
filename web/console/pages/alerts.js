// ops: the low-stock alerts inbox (acknowledge) and queue / dead-letter depths.
import { html, useState } from "../../common/html.js";
import { formatDate } from "../../common/i18n.js";
import { ErrorText, Loading, Pager, money, useLoad, usePager } from "../ui.js";

export function AlertsPage({ api, t, lang, href }) {
  const [status, setStatus] = useState("open");
  const pager = usePager([status]);
  const list = useLoad(() => api.get("/ops/alerts", { query: { status, cursor: pager.cursor, limit: 25 } }), [status, pager.cursor]);
  const [problem, setProblem] = useState(null);
  async function acknowledge(alert) {
    try {
      await api.post(`/ops/alerts/${encodeURIComponent(alert.alert_id)}/ack`);
      setProblem(null);
      list.reload();
    } catch (error) {
      setProblem(error);
    }
  }
  return html`<h1>${t("alerts.title")}</h1>
    <div class="row" role="group" aria-label=${t("order.status")}>
      ${["open", "acknowledged", "resolved"].map((s) => html`<button class=${s === status ? "" : "secondary"} aria-pressed=${s === status} onClick=${() => setStatus(s)}>${t("alert." + s)}</button>`)}
      <button class="secondary" onClick=${list.reload}>${t("refresh")}</button>
    </div>
    <${ErrorText} error=${list.error || problem} t=${t} />
    ${list.loading && !list.data ? html`<${Loading} t=${t} />` : html`<table>
      <thead><tr><th scope="col">SKU</th><th scope="col">${t("stock.warehouse")}</th><th scope="col" class="num">${t("level.available")}</th>
        <th scope="col" class="num">${t("level.threshold")}</th><th scope="col">${t("alerts.suggestion")}</th><th scope="col">${t("order.created")}</th><th scope="col">${t("alerts.action")}</th></tr></thead>
      <tbody>${(list.data?.items || []).map((a) => html`<tr data-alert=${`${a.sku}/${a.warehouse}`}>
        <td><a href=${href(`/stock/${encodeURIComponent(a.sku)}/${encodeURIComponent(a.warehouse)}`)}>${a.sku}</a></td><td>${a.warehouse}</td>
        <td class="num low">${a.available}</td><td class="num">${a.threshold}</td>
        <td>${t("alerts.reorder", { n: a.reorder_suggestion.quantity })}${a.reorder_suggestion.estimated_cost ? " · " + money(a.reorder_suggestion.estimated_cost) : ""}</td>
        <td>${formatDate(a.created_at, lang, true)}</td>
        <td>${a.status === "open" ? html`<button onClick=${() => acknowledge(a)} aria-label=${t("alerts.ackLabel", { sku: a.sku, warehouse: a.warehouse })}>${t("alerts.ack")}</button>` : a.acknowledged_by || ""}</td>
      </tr>`)}</tbody>
    </table>
    ${list.data && list.data.items.length === 0 && html`<p>${t("alerts.none")}</p>`}
    <${Pager} pager=${pager} nextCursor=${list.data?.next_cursor} t=${t} />`}`;
}

export function QueuesPage({ api, t }) {
  const depths = useLoad(() => api.get("/ops/queues"), []);
  return html`<h1>${t("queues.title")}</h1>
    <button class="secondary" onClick=${depths.reload}>${t("refresh")}</button>
    <${ErrorText} error=${depths.error} t=${t} />
    ${depths.loading && !depths.data ? html`<${Loading} t=${t} />` : html`<table>
      <thead><tr><th scope="col">${t("queues.queue")}</th><th scope="col" class="num">${t("queues.visible")}</th><th scope="col" class="num">${t("queues.inFlight")}</th>
        <th scope="col" class="num">${t("queues.delayed")}</th><th scope="col" class="num">${t("queues.dead")}</th></tr></thead>
      <tbody>${(depths.data?.items || []).map((q) => html`<tr><td>${q.queue}</td><td class="num">${q.visible}</td><td class="num">${q.in_flight}</td>
        <td class="num">${q.delayed}</td><td class=${q.dead_letters ? "num low" : "num"}>${q.dead_letters ?? "–"}</td></tr>`)}</tbody>
    </table>`}`;
}
