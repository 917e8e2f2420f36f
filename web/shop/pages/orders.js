// The shopper's orders: the list and one order with its timeline, parcels and payments.
import { html, useEffect, useState } from "../../common/html.js";
import { formatDate, localized } from "../../common/i18n.js";
import { formatMoney } from "../../common/money.js";
import { Problem, StatusPill, useLoad } from "./shared.js";

const CANCELLABLE = ["pending_payment", "paid"];
const LIVE = ["pending_payment", "paid", "picking", "packed", "shipped", "out_for_delivery"];
const REFRESH_MS = 3000;

function SignInFirst({ auth, t, lang }) {
  return html`<p><button onClick=${() => auth.signIn(undefined, lang)}>${t("nav.signIn")}</button></p>`;
}

export function OrdersPage(ctx) {
  const { api, user, t, lang, href } = ctx;
  const [pages, setPages] = useState([]);
  const [cursor, setCursor] = useState(undefined);
  const [error, setError] = useState(null);
  async function more(from) {
    try {
      const page = await api.get("/orders", { query: { limit: 10, cursor: from } });
      setPages((p) => [...p, ...page.items]);
      setCursor(page.next_cursor);
    } catch (e) {
      setError(e);
    }
  }
  useEffect(() => {
    if (user) more(undefined);
  }, [user?.id]);
  if (!user) return html`<h1>${t("orders.title")}</h1><${SignInFirst} ...${ctx} />`;
  return html`
    <h1>${t("orders.title")}</h1>
    <${Problem} error=${error} t=${t} />
    ${pages.length === 0 && !error && html`<p>${t("orders.empty")}</p>`}
    <ul class="choices">
      ${pages.map(
        (o) => html`<li key=${o.order_id} class="card">
          <a href=${href(`/orders/${encodeURIComponent(o.order_id)}`)}>${t("order.title", { id: o.order_id })}</a>
          <div class="row"><${StatusPill} status=${o.status} t=${t} /> <span>${formatMoney(o.total)}</span>
            <span class="muted">${formatDate(o.created_at, lang, true)}</span></div>
        </li>`,
      )}
    </ul>
    ${cursor && html`<p><button class="secondary" onClick=${() => more(cursor)}>${t("orders.more")}</button></p>`}
  `;
}

export function OrderPage(ctx) {
  const { api, user, t, lang, params, href, query } = ctx;
  const id = encodeURIComponent(params.orderId);
  // Back from the bank's 3-D Secure page: keep its verdict, drop its parameters from the URL.
  const [returned] = useState(() => query.get("redirect_status"));
  useEffect(() => {
    if (returned) history.replaceState(null, "", location.pathname);
  }, []);
  const [tick, setTick] = useState(0);
  const [cancelError, setCancelError] = useState(null);
  const [names, setNames] = useState({});
  const data = useLoad(async () => {
    if (!user) return null;
    const [order, tracking, payments, refunds] = await Promise.all([
      api.get(`/orders/${id}`),
      api.get(`/orders/${id}/tracking`).catch(() => null),
      api.get(`/orders/${id}/payments`).catch(() => ({ items: [] })),
      api.get(`/orders/${id}/refunds`).catch(() => ({ items: [] })),
    ]);
    return { order, tracking, payments: payments.items, refunds: refunds.items };
  }, [id, tick, user?.id]);
  // The order moves on by itself (payment, warehouse, carrier): keep the page current.
  useEffect(() => {
    if (!data.data || !LIVE.includes(data.data.order.status)) return;
    const timer = setTimeout(() => setTick((n) => n + 1), REFRESH_MS);
    return () => clearTimeout(timer);
  }, [data.data]);
  useEffect(() => {
    const lines = data.data?.order.lines || [];
    for (const line of lines) {
      if (names[line.sku]) continue;
      api.get(`/products/${encodeURIComponent(line.sku)}`, { auth: false }).then(
        (p) => setNames((n) => ({ ...n, [line.sku]: p.name })),
        () => {},
      );
    }
  }, [data.data?.order.order_id]);

  if (!user) return html`<h1>${t("order.title", { id: params.orderId })}</h1><${SignInFirst} ...${ctx} />`;
  if (data.error) return html`<h1>${t("order.title", { id: params.orderId })}</h1><${Problem} error=${data.error} t=${t} />`;
  if (!data.data) return html`<p>${t("loading")}</p>`;
  const { order, tracking, payments, refunds } = data.data;
  // A line in a delivered parcel can be reviewed (the review page says if it already was).
  const delivered = new Set(
    (order.shipments || []).filter((s) => s.status === "delivered").flatMap((s) => s.lines.map((l) => l.sku)),
  );

  async function cancel() {
    if (!confirm(t("order.cancelConfirm"))) return;
    try {
      await api.post(`/orders/${id}/cancel`, {});
      setTick((n) => n + 1);
    } catch (e) {
      setCancelError(e);
    }
  }

  return html`
    <h1>${t("order.title", { id: order.order_id })}</h1>
    <p class="row">${t("order.status")}: <span data-testid="order-status"><${StatusPill} status=${order.status} t=${t} /></span>
      <span class="muted">${t("order.placed")}: ${formatDate(order.created_at, lang, true)}</span></p>
    <div class="row">
      ${order.status === "pending_payment" && html`<a class="button" href=${href(`/orders/${id}/pay`)}>${t("order.pay")}</a>`}
      ${CANCELLABLE.includes(order.status) && html`<button class="secondary" onClick=${cancel}>${t("order.cancel")}</button>`}
      <button class="secondary" onClick=${() => ctx.openHelp(order.order_id)}>${t("help.askAboutOrder")}</button>
    </div>
    <${Problem} error=${cancelError} t=${t} />
    ${returned === "failed" && html`<p class="error" role="alert">${t("pay.failed", { message: t("status.failed") })}</p>`}
    ${returned === "succeeded" && order.status === "pending_payment" && html`<p role="status">${t("pay.waiting")}</p>`}
    <h2>${t("order.items")}</h2>
    <table>
      <tbody>
        ${order.lines.map(
          (l) => html`<tr key=${l.sku}><td>${localized(names[l.sku], lang) || l.sku}
            ${delivered.has(l.sku) && html` <a class="review-link" href=${href(`/orders/${id}/review?sku=${encodeURIComponent(l.sku)}`)}>${t("write.link")}<span class="visually-hidden">${t("write.linkFor", { name: localized(names[l.sku], lang) || l.sku })}</span></a>`}</td>
            <td class="num">× ${l.quantity}</td><td class="num">${formatMoney(l.line_total)}</td></tr>`,
        )}
      </tbody>
    </table>
    <div class="totals">
      <div><span>${t("cart.subtotal")}</span><span>${formatMoney(order.subtotal)}</span></div>
      <div><span>${t("checkout.shipping")}</span><span>${formatMoney(order.shipping_fee)}</span></div>
      <div class="grand"><span>${t("checkout.total")}</span><span>${formatMoney(order.total)}</span></div>
    </div>
    <h2>${t("order.timeline")}</h2>
    <ol class="timeline">
      ${order.history
        .filter((h, i, all) => i === 0 || all[i - 1].to !== h.to)
        .map((h, i) => html`<li key=${i}><${StatusPill} status=${h.to} t=${t} /> <span class="muted">${formatDate(h.at, lang, true)}</span></li>`)}
    </ol>
    <h2>${t("order.shipments")}</h2>
    ${(tracking?.shipments || []).map(
      (s) => html`<section class="card" key=${s.shipment_id} data-testid="shipment">
        <h3>${t("order.shipment", { warehouse: s.warehouse })} — <${StatusPill} status=${s.status} t=${t} /></h3>
        ${s.tracking_number && html`<p data-testid="tracking-number">${t("order.tracking", { number: s.tracking_number, carrier: s.carrier || "" })}</p>`}
        ${s.estimated_delivery && html`<p>${t("order.eta", { date: formatDate(s.estimated_delivery, lang, true) })}</p>`}
        ${s.timeline.length
          ? html`<ol class="timeline" data-testid="tracking-events">
              ${s.timeline.map(
                (e, i) => html`<li key=${i}><strong>${e.description}</strong>
                  <div class="muted">${formatDate(e.occurred_at, lang, true)} · ${placeText(e.location)}</div>
                  ${e.estimated_delivery && html`<div class="muted">${t("order.eta", { date: formatDate(e.estimated_delivery, lang, true) })}</div>`}</li>`,
              )}
            </ol>`
          : html`<p class="muted">${t("order.noEvents")}</p>`}
      </section>`,
    )}
    <h2>${t("order.payments")}</h2>
    <ul data-testid="payments">
      ${payments.map(
        (p) => html`<li key=${p.payment_id}>${t(`method.${p.method}`)} · ${formatMoney(p.amount)} · <${StatusPill} status=${p.status} t=${t} />
          ${p.failure && html`<span class="error"> ${p.failure.message}</span>`}</li>`,
      )}
      ${refunds.map((r) => html`<li key=${r.refund_id}>${t("order.refund", { amount: formatMoney(r.amount), status: t(`status.${r.status}`) })}</li>`)}
    </ul>
  `;
}

function placeText(location) {
  if (!location) return "";
  if (typeof location === "string") return location;
  return [location.city, location.region, location.country].filter(Boolean).join(", ");
}
