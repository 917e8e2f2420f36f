// Paying an order: card (Stripe.js), quick pay with a saved card, Alipay and WeChat Pay QR.
import { html, useEffect, useRef, useState } from "../../common/html.js";
import { randomId } from "../../common/api.js";
import { formatMoney } from "../../common/money.js";
import { QrCode } from "../../common/qr.js";
import { Problem, useLoad } from "./shared.js";

const POLL_MS = 1500;
let stripeLoad = null;

function loadStripe(config, lang) {
  stripeLoad ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = config.stripe.js_url;
    script.onload = () => resolve(window.Stripe(config.stripe.publishable_key, { locale: lang === "zh-CN" ? "zh" : "en" }));
    script.onerror = () => reject(new Error("Stripe.js did not load"));
    document.head.appendChild(script);
  });
  return stripeLoad;
}

export function PayPage(ctx) {
  const { api, config, t, lang, params, go, href } = ctx;
  const orderId = params.orderId;
  const order = useLoad(() => api.get(`/orders/${encodeURIComponent(orderId)}`), [orderId]);
  const saved = useLoad(() => api.get("/me/payment-methods"), []);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState(null);
  const [error, setError] = useState(null);
  const [qr, setQr] = useState(null);
  const [saveCard, setSaveCard] = useState(false);
  const [paid, setPaid] = useState(false);
  const cardRef = useRef(null);
  const stripeRef = useRef(null);
  const elementRef = useRef(null);

  useEffect(() => {
    let live = true;
    loadStripe(config, lang).then((stripe) => {
      if (!live || !cardRef.current) return;
      stripeRef.current = stripe;
      const element = stripe.elements({ locale: lang === "zh-CN" ? "zh" : "en" }).create("card");
      element.mount(cardRef.current);
      elementRef.current = element;
    }, setError);
    return () => {
      live = false;
      elementRef.current?.destroy();
    };
  }, [lang, order.data?.status]);

  // While a payment is under way, watch the order until it is paid.
  useEffect(() => {
    if (!qr && !busy) return;
    const timer = setInterval(async () => {
      const fresh = await api.get(`/orders/${encodeURIComponent(orderId)}`).catch(() => null);
      if (fresh && fresh.status !== "pending_payment") {
        clearInterval(timer);
        setPaid(true);
        setTimeout(() => go(`/orders/${encodeURIComponent(orderId)}`), 800);
      }
    }, POLL_MS);
    return () => clearInterval(timer);
  }, [qr, busy]);

  async function pay(body) {
    setBusy(true);
    setError(null);
    setMessage(t("pay.processing"));
    try {
      let payment = await api.post(`/orders/${encodeURIComponent(orderId)}/payments`, body, { idempotencyKey: randomId() });
      if (payment.status === "requires_action" && payment.next_action?.type === "redirect") {
        // The bank's page, which sends the shopper back to the order's page (Stripe's redirect).
        location.assign(payment.next_action.url);
        return;
      }
      if (payment.status === "requires_action" && payment.next_action?.client_secret) {
        setMessage(t("pay.authenticating"));
        const result = await stripeRef.current.handleNextAction({ clientSecret: payment.next_action.client_secret });
        if (result.error) throw new Error(result.error.message);
        payment = await waitForPayment(payment.payment_id);
      }
      if (payment.status === "failed") throw new Error(payment.failure?.message || t("status.failed"));
      if (payment.next_action?.type === "qr_code") {
        setQr({ method: payment.method, url: payment.next_action.code_url });
        setMessage(t("pay.waiting"));
        setBusy(false);
        return;
      }
      setMessage(t("pay.waiting"));
    } catch (e) {
      setMessage(null);
      setError(e);
      setBusy(false);
    }
  }

  async function waitForPayment(paymentId) {
    for (let i = 0; i < 40; i++) {
      const list = await api.get(`/orders/${encodeURIComponent(orderId)}/payments`);
      const payment = list.items.find((p) => p.payment_id === paymentId);
      if (payment && payment.status !== "requires_action") return payment;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(t("status.requires_action"));
  }

  async function payByCard(event) {
    event.preventDefault();
    const stripe = stripeRef.current;
    if (!stripe || !elementRef.current) return;
    setBusy(true);
    setError(null);
    const result = await stripe
      .createPaymentMethod({ type: "card", card: elementRef.current })
      .catch((e) => ({ error: { message: e.message } }));
    if (result.error) {
      setBusy(false);
      setError(new Error(result.error.message));
      return;
    }
    await pay({ method: "card", payment_method: result.paymentMethod.id, save_for_later: saveCard });
  }

  if (order.error) return html`<h1>${t("pay.title")}</h1><${Problem} error=${order.error} t=${t} />`;
  if (!order.data) return html`<p>${t("loading")}</p>`;
  const o = order.data;
  const appName = qr && t(qr.method === "alipay" ? "method.alipay" : "method.wechat_pay");
  return html`
    <h1>${t("pay.title")}</h1>
    <p>${t("order.title", { id: o.order_id })} — ${t("pay.amount")}: <strong class="price" data-testid="amount">${formatMoney(o.total)}</strong></p>
    <div aria-live="polite" role="status" data-testid="pay-status">
      ${paid ? html`<p class="ok">${t("pay.paid")}</p>` : message && html`<p>${message}</p>`}
    </div>
    ${error && html`<p class="error" role="alert" data-testid="pay-error">${t("pay.failed", { message: error.message })}</p>`}
    ${o.status !== "pending_payment" && !paid
      ? html`<p>${t("pay.notPayable")} <a href=${href(`/orders/${encodeURIComponent(o.order_id)}`)}>${t("order.title", { id: o.order_id })}</a></p>`
      : html`
    ${qr &&
    html`<section class="card qr" aria-labelledby="qr-title">
      <h2 id="qr-title">${t("pay.scan", { app: appName })}</h2>
      <${QrCode} text=${qr.url} label=${t("pay.qr", { app: appName })} />
      ${qr.url.startsWith("http") && html`<p><a href=${qr.url} target="_blank" rel="noopener noreferrer">${t("pay.openPage")}</a></p>`}
    </section>`}
    <div class="pay-methods">
      ${saved.data?.items.length > 0 &&
      html`<section class="card" aria-labelledby="saved-title">
        <h2 id="saved-title">${t("pay.saved")}</h2>
        ${saved.data.items.map(
          (m) => html`<p key=${m.id}><button disabled=${busy} onClick=${() => pay({ method: "card", saved_payment_method_id: m.id })}>
            ${t("pay.quick", { brand: m.brand, last4: m.last4 })}</button></p>`,
        )}
      </section>`}
      <section class="card" aria-labelledby="card-title">
        <h2 id="card-title">${t("pay.card")}</h2>
        <form onSubmit=${payByCard}>
          <div ref=${cardRef} data-testid="card-element"></div>
          <label><input type="checkbox" checked=${saveCard} onChange=${(e) => setSaveCard(e.target.checked)} /> ${t("pay.save")}</label>
          <button type="submit" disabled=${busy}>${t("pay.payCard")}</button>
        </form>
      </section>
      <section class="card" aria-label=${t("method.alipay") + " / " + t("method.wechat_pay")}>
        <h2>${t("method.alipay")} / ${t("method.wechat_pay")}</h2>
        <p class="row">
          <button disabled=${busy} onClick=${() => pay({ method: "alipay" })}>${t("pay.alipay")}</button>
          <button disabled=${busy} onClick=${() => pay({ method: "wechat_pay" })}>${t("pay.wechat")}</button>
        </p>
      </section>
    </div>`}
  `;
}
