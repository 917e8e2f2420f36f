// ops: one warehouse's work list, moved on by pick, pack and ship, with each packing list.
import { html, useState } from "../../common/html.js";
import { ErrorText, Loading, Pager, useAction, useLoad, usePager } from "../ui.js";
import { loadWarehouses } from "./shared.js";

const STEPS = { pending: "pick", picking: "pack", packed: "ship" };

export function FulfilmentPage({ api, t, query, go }) {
  const warehouses = useLoad(() => loadWarehouses(api), []);
  const warehouse = query.get("warehouse") || warehouses.data?.[0]?.id || "";
  const [status, setStatus] = useState("pending");
  // What the last step did stays on the page after its card leaves this list.
  const [notice, setNotice] = useState(null);
  const pager = usePager([warehouse, status]);
  const work = useLoad(async () => {
    if (!warehouse) return null;
    const page = await api.get(`/warehouses/${encodeURIComponent(warehouse)}/shipments`, { query: { status, cursor: pager.cursor, limit: 10 } });
    // The packing list is the shipment's lines, kept on its order.
    const orders = await Promise.all(page.items.map((s) => api.get(`/orders/${encodeURIComponent(s.order_id)}`).catch(() => null)));
    page.items.forEach((s, i) => (s.lines = orders[i]?.shipments.find((x) => x.shipment_id === s.shipment_id)?.lines || []));
    return page;
  }, [warehouse, status, pager.cursor]);
  return html`<h1>${t("fulfilment.title")}</h1>
    <div class="row">
      <label>${t("stock.warehouse")}<select value=${warehouse} onChange=${(e) => go("/fulfilment?warehouse=" + encodeURIComponent(e.target.value))}>
        ${(warehouses.data || []).map((w) => html`<option value=${w.id}>${w.name}</option>`)}
      </select></label>
      <div role="group" aria-label=${t("order.status")}>
        ${Object.keys(STEPS).map((s) => html`<button class=${s === status ? "" : "secondary"} aria-pressed=${s === status} onClick=${() => setStatus(s)}>${t("shipment." + s)}</button> `)}
      </div>
    </div>
    ${notice && html`<p class="notice" role="status" data-notice>${notice}</p>`}
    <${ErrorText} error=${work.error || warehouses.error} t=${t} />
    ${work.loading && !work.data ? html`<${Loading} t=${t} />` : html`<div class="board">
      ${(work.data?.items || []).map((s) => html`<${ShipmentCard} key=${s.shipment_id + s.status} api=${api} t=${t} shipment=${s} done=${(text) => (setNotice(text), work.reload())} />`)}
    </div>
    ${work.data && work.data.items.length === 0 && html`<p>${t("fulfilment.empty")}</p>`}
    <${Pager} pager=${pager} nextCursor=${work.data?.next_cursor} t=${t} />`}`;
}

function ShipmentCard({ api, t, shipment, done }) {
  const action = useAction(t);
  const step = STEPS[shipment.status];
  async function advance() {
    const moved = await action.run(() => api.post(`/shipments/${encodeURIComponent(shipment.shipment_id)}/${step}`));
    if (moved) {
      const tracking = moved.tracking_number ? ` ${moved.carrier || ""} ${moved.tracking_number}` : "";
      done(`${shipment.shipment_id}: ${t("fulfilment.moved." + step)}${tracking}`);
    }
  }
  return html`<article class="panel" data-shipment=${shipment.shipment_id} aria-labelledby=${"s-" + shipment.shipment_id}>
    <h2 id=${"s-" + shipment.shipment_id}>${shipment.shipment_id}</h2>
    <p class="muted">${t("order.id")}: ${shipment.order_id} · ${t("shipment." + shipment.status)}</p>
    <h3>${t("fulfilment.packingList")}</h3>
    <table><thead><tr><th scope="col">SKU</th><th scope="col" class="num">${t("order.quantity")}</th></tr></thead>
      <tbody>${shipment.lines.map((l) => html`<tr><td>${l.sku}</td><td class="num">${l.quantity}</td></tr>`)}</tbody></table>
    <p><button disabled=${action.busy} onClick=${advance}>${t("fulfilment." + step)}</button></p>
    ${action.error && action.status}
  </article>`;
}
