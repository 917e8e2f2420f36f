// ops: the orders board and an order's detail (refund, cancel); support: lookup by order or
// customer, with that customer's orders, tracking and notifications.
import { html, useState } from "../../common/html.js";
import { formatDate } from "../../common/i18n.js";
import { ErrorText, Loading, OPS, Pager, formValues, fromMinor, inGroup, money, toMinor, useAction, useLoad, usePager } from "../ui.js";

const STATUSES = ["paid", "picking", "packed", "shipped", "out_for_delivery", "delivered", "completed", "pending_payment", "cancelled", "expired"];
const ID = /^[A-Za-z0-9._-]{1,64}$/;

function OrderTable({ orders, t, lang, href }) {
  return html`<table>
    <thead><tr><th scope="col">${t("order.id")}</th><th scope="col">${t("order.status")}</th><th scope="col">${t("order.customer")}</th>
      <th scope="col" class="num">${t("order.total")}</th><th scope="col">${t("order.created")}</th></tr></thead>
    <tbody>${orders.map((o) => html`<tr>
      <td><a href=${href("/orders/" + encodeURIComponent(o.order_id))}>${o.order_id}</a></td>
      <td><span class="badge">${t("status." + o.status)}</span></td><td>${o.customer_id}</td>
      <td class="num">${money(o.total)}</td><td>${formatDate(o.created_at, lang, true)}</td>
    </tr>`)}</tbody>
  </table>`;
}

function Search({ t, go, label }) {
  const [problem, setProblem] = useState(null);
  function submit(event) {
    event.preventDefault();
    const v = formValues(event.currentTarget);
    const text = (v.q || "").trim();
    if (!ID.test(text)) return setProblem(t("search.invalid"));
    setProblem(null);
    if (v.kind === "order") go("/orders/" + encodeURIComponent(text));
    else go(`${label}?customer=${encodeURIComponent(text)}`);
  }
  return html`<form class="row" role="search" onSubmit=${submit}>
    <label>${t("search.kind")}<select name="kind">
      <option value="order">${t("search.byOrder")}</option>
      <option value="customer">${t("search.byCustomer")}</option>
    </select></label>
    <label>${t("search.text")}<input name="q" required /></label>
    <button>${t("search.go")}</button>
    ${problem && html`<p class="error" role="alert">${problem}</p>`}
  </form>`;
}

export function OrdersBoard({ api, t, lang, href, go, query }) {
  const customer = query.get("customer") || "";
  const [status, setStatus] = useState(customer ? "" : "paid");
  const pager = usePager([status, customer]);
  const list = useLoad(() => api.get("/orders", { query: { status, customer, cursor: pager.cursor, limit: 25 } }), [status, customer, pager.cursor]);
  return html`<h1>${t("orders.title")}</h1>
    <${Search} t=${t} go=${go} label="/orders" />
    <div class="row">
      <label>${t("order.status")}<select value=${status} onChange=${(e) => setStatus(e.target.value)}>
        <option value="">${t("all")}</option>
        ${STATUSES.map((s) => html`<option value=${s}>${t("status." + s)}</option>`)}
      </select></label>
      ${customer && html`<p>${t("orders.ofCustomer", { customer })} <a href=${href("/orders")}>${t("clear")}</a></p>`}
    </div>
    <${ErrorText} error=${list.error} t=${t} />
    ${list.loading && !list.data ? html`<${Loading} t=${t} />` : html`<${OrderTable} orders=${list.data?.items || []} t=${t} lang=${lang} href=${href} />
      ${list.data && list.data.items.length === 0 && html`<p>${t("empty")}</p>`}
      <${Pager} pager=${pager} nextCursor=${list.data?.next_cursor} t=${t} />`}`;
}

export function OrderDetail({ api, t, lang, params, user, href }) {
  const id = encodeURIComponent(params.orderId);
  const order = useLoad(() => api.get(`/orders/${id}`), [id]);
  const payments = useLoad(() => api.get(`/orders/${id}/payments`), [id]);
  const refunds = useLoad(() => api.get(`/orders/${id}/refunds`), [id]);
  const reload = () => (order.reload(), payments.reload(), refunds.reload());
  if (order.error) return html`<h1>${t("order.title", { id: params.orderId })}</h1><${ErrorText} error=${order.error} t=${t} />`;
  if (!order.data) return html`<${Loading} t=${t} />`;
  const o = order.data;
  const refundable = (payments.data?.items || []).reduce((n, p) => n + (p.captured?.amount || 0) - (p.refunded?.amount || 0), 0);
  const ops = inGroup(user, OPS);
  return html`<h1>${t("order.title", { id: o.order_id })}</h1>
    <dl class="facts panel">
      <dt>${t("order.status")}</dt><dd data-field="status">${t("status." + o.status)}</dd>
      <dt>${t("order.customer")}</dt><dd><a href=${href(ops ? "/orders?customer=" + encodeURIComponent(o.customer_id) : "/support?customer=" + encodeURIComponent(o.customer_id))}>${o.customer_id}</a></dd>
      <dt>${t("order.total")}</dt><dd>${money(o.total)} (${t("order.shippingFee")} ${money(o.shipping_fee)})</dd>
      <dt>${t("order.address")}</dt><dd>${[o.shipping_address?.name, o.shipping_address?.city, o.shipping_address?.line1].filter(Boolean).join(", ")}</dd>
      ${o.note && html`<dt>${t("order.note")}</dt><dd>${o.note}</dd>`}
    </dl>
    <h2>${t("order.lines")}</h2>
    <table><thead><tr><th scope="col">SKU</th><th scope="col" class="num">${t("order.quantity")}</th><th scope="col" class="num">${t("order.lineTotal")}</th><th scope="col">${t("order.allocations")}</th></tr></thead>
      <tbody>${o.lines.map((l) => html`<tr><td>${l.sku}</td><td class="num">${l.quantity}</td><td class="num">${money(l.line_total)}</td>
        <td>${l.allocations.map((a) => `${a.warehouse} × ${a.quantity}`).join(", ")}</td></tr>`)}</tbody></table>
    <h2>${t("order.shipments")}</h2>
    <table><thead><tr><th scope="col">${t("shipment.id")}</th><th scope="col">${t("stock.warehouse")}</th><th scope="col">${t("order.status")}</th><th scope="col">${t("shipment.lines")}</th></tr></thead>
      <tbody>${o.shipments.map((s) => html`<tr><td>${s.shipment_id}</td><td>${s.warehouse}</td><td>${t("shipment." + s.status)}</td>
        <td>${s.lines.map((l) => `${l.sku} × ${l.quantity}`).join(", ")}</td></tr>`)}</tbody></table>
    <h2>${t("order.payments")}</h2>
    <${ErrorText} error=${payments.error} t=${t} />
    <table><thead><tr><th scope="col">ID</th><th scope="col">${t("payment.method")}</th><th scope="col">${t("order.status")}</th>
      <th scope="col" class="num">${t("payment.captured")}</th><th scope="col" class="num">${t("payment.refunded")}</th></tr></thead>
      <tbody>${(payments.data?.items || []).map((p) => html`<tr><td>${p.payment_id}</td><td>${p.method}</td><td>${p.status}</td>
        <td class="num">${money(p.captured)}</td><td class="num" data-field="refunded">${money(p.refunded)}</td></tr>`)}</tbody></table>
    <h2>${t("order.refunds")}</h2>
    <table><thead><tr><th scope="col">ID</th><th scope="col" class="num">${t("refund.amount")}</th><th scope="col">${t("refund.reason")}</th><th scope="col">${t("order.status")}</th><th scope="col">${t("order.created")}</th></tr></thead>
      <tbody>${(refunds.data?.items || []).map((r) => html`<tr><td>${r.refund_id}</td><td class="num">${money(r.amount)}</td><td>${r.reason}</td>
        <td>${t("refund." + r.status)}</td><td>${formatDate(r.created_at, lang, true)}</td></tr>`)}</tbody></table>
    ${ops && html`<div class="cards">
      <${RefundForm} api=${api} t=${t} id=${id} refundable=${refundable} currency=${o.total.currency} done=${reload} />
      <${CancelForm} api=${api} t=${t} id=${id} done=${reload} />
    </div>`}
    <h2>${t("order.timeline")}</h2>
    <ol>${o.history.map((h) => {
      // A shipment's own steps carry its id; the rest are the order's statuses.
      const kind = h.shipment_id ? "shipment." : "status.";
      return html`<li>${formatDate(h.at, lang, true)} — ${h.shipment_id ? h.shipment_id + ": " : ""}${h.from ? t(kind + h.from) + " → " : ""}${t(kind + h.to)}
        <span class="muted"> (${h.actor}${h.reason ? ", " + h.reason : ""})</span></li>`;
    })}</ol>`;
}

function RefundForm({ api, t, id, refundable, currency, done }) {
  const action = useAction(t);
  const [full, setFull] = useState(true);
  async function submit(event) {
    event.preventDefault();
    const v = formValues(event.currentTarget);
    const amount = full ? refundable : toMinor(v.amount);
    const ok = await action.run(() => api.post(`/orders/${id}/refunds`, { amount: { amount, currency }, reason: v.reason }), t("refund.done"));
    if (ok) done();
  }
  return html`<form class="panel" onSubmit=${submit} aria-labelledby="refund-title">
    <h2 id="refund-title">${t("refund.title")}</h2>
    <p class="muted">${t("refund.refundable", { amount: money({ amount: refundable, currency }) })}</p>
    <div class="row">
      <label class="check"><input type="radio" name="scope" checked=${full} onChange=${() => setFull(true)} /> ${t("refund.full")}</label>
      <label class="check"><input type="radio" name="scope" checked=${!full} onChange=${() => setFull(false)} /> ${t("refund.partial")}</label>
    </div>
    <div class="row">
      ${!full && html`<label>${t("refund.amountYuan")}<input name="amount" required inputmode="decimal" pattern="\\d+(\\.\\d{1,2})?" placeholder=${fromMinor(refundable)} /></label>`}
      <label>${t("refund.reason")}<input name="reason" required maxlength="200" /></label>
    </div>
    <button disabled=${action.busy || refundable <= 0}>${t("refund.submit")}</button>${action.status}
  </form>`;
}

function CancelForm({ api, t, id, done }) {
  const action = useAction(t);
  async function submit(event) {
    event.preventDefault();
    const v = formValues(event.currentTarget);
    if (!confirm(t("cancel.confirm"))) return;
    const ok = await action.run(() => api.post(`/orders/${id}/cancel`, { reason: v.reason || null }), t("cancel.done"));
    if (ok) done();
  }
  return html`<form class="panel" onSubmit=${submit} aria-labelledby="cancel-title">
    <h2 id="cancel-title">${t("cancel.title")}</h2>
    <div class="row"><label>${t("refund.reason")}<input name="reason" maxlength="200" /></label></div>
    <button class="danger" disabled=${action.busy}>${t("cancel.submit")}</button>${action.status}
  </form>`;
}

export function SupportPage({ api, t, lang, href, go, query }) {
  const customer = query.get("customer") || "";
  const [selected, setSelected] = useState(null);
  const orders = useLoad(() => (customer ? api.get("/orders", { query: { customer, limit: 50 } }) : null), [customer]);
  const notes = useLoad(() => (customer ? api.get(`/customers/${encodeURIComponent(customer)}/notifications`, { query: { limit: 20 } }) : null), [customer]);
  const tracking = useLoad(() => (selected ? api.get(`/orders/${encodeURIComponent(selected)}/tracking`) : null), [selected]);
  return html`<h1>${t("support.title")}</h1>
    <${Search} t=${t} go=${go} label="/support" />
    ${customer && html`
      <h2>${t("orders.ofCustomer", { customer })}</h2>
      <${ErrorText} error=${orders.error} t=${t} />
      ${orders.data && html`<table>
        <thead><tr><th scope="col">${t("order.id")}</th><th scope="col">${t("order.status")}</th><th scope="col" class="num">${t("order.total")}</th><th scope="col">${t("order.created")}</th><th scope="col">${t("support.tracking")}</th></tr></thead>
        <tbody>${orders.data.items.map((o) => html`<tr>
          <td><a href=${href("/orders/" + encodeURIComponent(o.order_id))}>${o.order_id}</a></td>
          <td>${t("status." + o.status)}</td><td class="num">${money(o.total)}</td><td>${formatDate(o.created_at, lang, true)}</td>
          <td><button class="secondary" onClick=${() => setSelected(o.order_id)}>${t("support.showTracking")}</button></td>
        </tr>`)}</tbody></table>
        ${orders.data.items.length === 0 && html`<p>${t("empty")}</p>`}`}
      ${selected && html`<section class="panel" aria-labelledby="tracking-title">
        <h2 id="tracking-title">${t("support.trackingOf", { id: selected })}</h2>
        <${ErrorText} error=${tracking.error} t=${t} />
        ${(tracking.data?.shipments || []).map((s) => html`<div>
          <p><strong>${s.shipment_id}</strong> ${s.carrier || ""} ${s.tracking_number || ""} — ${s.tracking_status || t("shipment." + s.status)}</p>
          <ul>${s.timeline.map((e) => html`<li>${formatDate(e.occurred_at, lang, true)} ${e.description}</li>`)}</ul>
        </div>`)}
        ${tracking.data && tracking.data.shipments.length === 0 && html`<p>${t("support.noShipments")}</p>`}
      </section>`}
      <h2>${t("support.notifications")}</h2>
      <${ErrorText} error=${notes.error} t=${t} />
      <table><thead><tr><th scope="col">${t("notification.sent")}</th><th scope="col">${t("notification.channel")}</th><th scope="col">${t("notification.subject")}</th><th scope="col">${t("notification.body")}</th></tr></thead>
        <tbody>${(notes.data?.items || []).map((n) => html`<tr><td>${formatDate(n.sent_at, lang, true)}</td><td>${n.channel}</td><td>${n.subject || ""}</td><td>${n.body}</td></tr>`)}</tbody></table>`}`;
}
