// The cart and checkout: address, quote, and placing the order exactly once.
import { html, useEffect, useState } from "../../common/html.js";
import { randomId } from "../../common/api.js";
import { formatDate, localized } from "../../common/i18n.js";
import { formatMoney, multiply, sum } from "../../common/money.js";
import { cartItems, clearCart, onCartChange, refreshItem, setQuantity } from "../cart.js";
import { Problem, loadCities, useLoad } from "./shared.js";

const CHECKOUT_KEY = "orderdesk.checkout-key";

function useCart() {
  const [items, setItems] = useState(cartItems());
  useEffect(() => onCartChange(setItems), []);
  return items;
}

export function CartPage({ t, lang, href }) {
  const items = useCart();
  if (!items.length) {
    return html`<h1>${t("cart.title")}</h1><p>${t("cart.empty")}</p><p><a href=${href("/")}>${t("cart.continue")}</a></p>`;
  }
  return html`
    <h1>${t("cart.title")}</h1>
    <${CartTable} items=${items} t=${t} lang=${lang} editable=${true} />
    <div class="row" style="justify-content:flex-end;margin-top:16px">
      <a class="button secondary" href=${href("/")}>${t("cart.continue")}</a>
      <a class="button" href=${href("/checkout")}>${t("cart.checkout")}</a>
    </div>
  `;
}

function CartTable({ items, t, lang, editable }) {
  const subtotal = sum(items.map((i) => multiply(i.price, i.quantity)), items[0]?.price.currency);
  return html`<table>
    <thead><tr><th scope="col">${t("order.items")}</th><th scope="col" class="num">${t("product.quantity")}</th><th scope="col" class="num">${t("cart.subtotal")}</th><th scope="col"><span class="skip">—</span></th></tr></thead>
    <tbody>
      ${items.map((item) => {
        const name = localized(item.name, lang);
        return html`<tr key=${item.sku}>
          <td>${name}<div class="muted">${formatMoney(item.price)}</div></td>
          <td class="num">
            ${editable
              ? html`<input class="qty" type="number" min="0" max=${item.max ?? undefined} value=${item.quantity}
                  aria-label=${t("cart.quantityOf", { name })} onChange=${(e) => setQuantity(item.sku, Number(e.target.value) || 0)} />
                  ${item.max != null && html`<div class="muted">${t("cart.max", { n: item.max })}</div>`}`
              : item.quantity}
          </td>
          <td class="num">${formatMoney(multiply(item.price, item.quantity))}</td>
          <td>${editable && html`<button class="link" onClick=${() => setQuantity(item.sku, 0)} aria-label=${t("cart.remove", { name })}>✕</button>`}</td>
        </tr>`;
      })}
    </tbody>
    <tfoot><tr><th scope="row" colspan="2">${t("cart.subtotal")}</th><td class="num">${formatMoney(subtotal)}</td><td></td></tr></tfoot>
  </table>`;
}

const EMPTY_ADDRESS = { name: "", phone: "+86", country: "CN", region: "", city: "", line1: "", postcode: "" };

/** The fields of a shipping address; a city from GET /cities fills region and location. */
export function AddressForm({ api, t, lang, onSave, saveLabel, idPrefix = "addr" }) {
  const [address, setAddress] = useState(EMPTY_ADDRESS);
  const [cities, setCities] = useState([]);
  const [makeDefault, setMakeDefault] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  useEffect(() => {
    loadCities(api).then(setCities);
  }, []);
  const set = (key) => (e) => setAddress({ ...address, [key]: e.target.value });
  function pickCity(e) {
    const city = cities.find((c) => c.id === e.target.value);
    if (!city) return setAddress({ ...address, city: "", region: "", location: undefined });
    setAddress({ ...address, city: city.name["zh-CN"], region: city.region, location: city.location });
  }
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onSave(address, makeDefault);
      setAddress(EMPTY_ADDRESS);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  const field = (key, label, attrs = {}) => html`<div class="field">
    <label for=${`${idPrefix}-${key}`}>${t(label)}</label>
    <input id=${`${idPrefix}-${key}`} value=${address[key]} onInput=${set(key)} required ...${attrs} />
  </div>`;
  const selected = cities.find((c) => c.name["zh-CN"] === address.city);
  return html`<form onSubmit=${submit}>
    ${field("name", "address.name", { autocomplete: "name" })}
    ${field("phone", "address.phone", { autocomplete: "tel", type: "tel" })}
    ${cities.length
      ? html`<div class="field"><label for=${`${idPrefix}-city`}>${t("address.city")}</label>
          <select id=${`${idPrefix}-city`} required value=${selected?.id || ""} onChange=${pickCity}>
            <option value="">${t("product.chooseCity")}</option>
            ${cities.map((c) => html`<option key=${c.id} value=${c.id}>${localized(c.name, lang)}</option>`)}
          </select></div>`
      : html`${field("region", "address.region")}${field("city", "address.city")}`}
    ${field("line1", "address.line1", { autocomplete: "street-address" })}
    ${field("postcode", "address.postcode", { autocomplete: "postal-code", inputmode: "numeric" })}
    <label><input type="checkbox" checked=${makeDefault} onChange=${(e) => setMakeDefault(e.target.checked)} /> ${t("address.makeDefault")}</label>
    <${Problem} error=${error} t=${t} />
    <button type="submit" disabled=${busy}>${saveLabel}</button>
  </form>`;
}

export function shippingAddress(address) {
  const { address_id, is_default, ...rest } = address;
  return rest;
}

export function addressLine(a) {
  return `${a.name} · ${a.phone} · ${a.region} ${a.city} ${a.line1} ${a.postcode}`;
}

export function CheckoutPage(ctx) {
  const { api, auth, user, t, lang, go, href } = ctx;
  const items = useCart();
  const [changed, setChanged] = useState(false);
  const [refreshed, setRefreshed] = useState(false);
  const [addressId, setAddressId] = useState(null);
  const [fallbackAddress, setFallbackAddress] = useState(null);
  const [quote, setQuote] = useState(null);
  const [quoteError, setQuoteError] = useState(null);
  const [placing, setPlacing] = useState(false);
  const [placeError, setPlaceError] = useState(null);
  const book = useLoad(() => (user ? api.get("/me/addresses") : null), [user?.id]);

  // Prices and availability are read again here: the cart's copy may be old.
  useEffect(() => {
    if (!items.length) return;
    Promise.all(items.map((item) => api.get(`/products/${encodeURIComponent(item.sku)}`, { auth: false }))).then((products) => {
      let differs = false;
      for (const p of products) {
        const item = items.find((i) => i.sku === p.sku);
        const available = p.availability?.available ?? 0;
        if (item.price.amount !== p.price.amount || item.quantity > available) differs = true;
        refreshItem(p, available);
      }
      setChanged(differs);
      setRefreshed(true);
    });
  }, []);
  useEffect(() => {
    const list = book.data?.items || [];
    if (!addressId && list.length) setAddressId((list.find((a) => a.is_default) || list[0]).address_id);
  }, [book.data]);

  const addresses = book.data?.items || [];
  const chosen = addresses.find((a) => a.address_id === addressId) || fallbackAddress;
  const body = chosen && items.length ? { lines: items.map((i) => ({ sku: i.sku, quantity: i.quantity })), shipping_address: shippingAddress(chosen) } : null;
  const bodyKey = JSON.stringify(body);

  useEffect(() => {
    if (!body || !refreshed) return;
    let live = true;
    setQuote(null);
    setQuoteError(null);
    api.post("/orders/quote", body).then((q) => live && setQuote(q), (e) => live && setQuoteError(e));
    return () => (live = false);
  }, [bodyKey, refreshed]);

  if (!user) {
    return html`<h1>${t("checkout.title")}</h1><p>${t("checkout.signInHint")}</p>
      <button onClick=${() => auth.signIn(href("/checkout"), lang)}>${t("checkout.signIn")}</button>`;
  }
  if (!items.length) return html`<h1>${t("checkout.title")}</h1><p>${t("cart.empty")}</p>`;

  async function saveAddress(address, makeDefault) {
    try {
      const saved = await api.post("/me/addresses", { ...address, is_default: makeDefault || undefined });
      book.reload();
      setAddressId(saved.address_id);
    } catch (e) {
      if (e.status === 404) setFallbackAddress(address); // no address book: use it once
      else throw e;
    }
  }

  async function place() {
    // One key per checkout: a double click or a retry replays the same order.
    let key = sessionStorage.getItem(CHECKOUT_KEY);
    if (!key) {
      key = randomId();
      sessionStorage.setItem(CHECKOUT_KEY, key);
    }
    setPlacing(true);
    setPlaceError(null);
    try {
      const order = await api.post("/orders", body, { idempotencyKey: key });
      sessionStorage.removeItem(CHECKOUT_KEY);
      clearCart();
      go(`/orders/${encodeURIComponent(order.order_id)}/pay`);
    } catch (e) {
      if (e.status && e.status < 500 && e.code !== "busy") sessionStorage.removeItem(CHECKOUT_KEY);
      setPlaceError(e);
      setPlacing(false);
    }
  }

  return html`
    <h1>${t("checkout.title")}</h1>
    ${changed && html`<p class="error" role="status">${t("checkout.pricesChanged")}</p>`}
    <${CartTable} items=${items} t=${t} lang=${lang} editable=${false} />
    <fieldset>
      <legend>${t("checkout.address")}</legend>
      ${addresses.length > 0 &&
      html`<ul class="choices">
        ${addresses.map(
          (a) => html`<li key=${a.address_id}><label>
            <input type="radio" name="address" checked=${a.address_id === addressId} onChange=${() => setAddressId(a.address_id)} />
            <span>${addressLine(a)} ${a.is_default && html`<strong>(${t("address.default")})</strong>`}</span>
          </label></li>`,
        )}
      </ul>`}
      ${fallbackAddress && html`<p>${addressLine(fallbackAddress)}</p>`}
      <details open=${!addresses.length && !fallbackAddress}>
        <summary>${t("checkout.newAddress")}</summary>
        <${AddressForm} api=${api} t=${t} lang=${lang} onSave=${saveAddress} saveLabel=${t("checkout.saveAddress")} />
      </details>
    </fieldset>
    <section aria-labelledby="quote-title" aria-live="polite">
      <h2 id="quote-title">${t("checkout.quote")}</h2>
      ${!chosen && html`<p>${t("checkout.chooseAddress")}</p>`}
      ${chosen && !quote && !quoteError && html`<p>${t("checkout.quoting")}</p>`}
      <${Problem} error=${quoteError} t=${t} />
      ${quote &&
      html`<ul>
          ${quote.shipments.map(
            (s, i) => html`<li key=${i}>${t("checkout.shipsFrom", { city: s.city, date: etaText(s.estimated_delivery, lang) })}</li>`,
          )}
        </ul>
        <div class="totals" data-testid="quote">
          <div><span>${t("cart.subtotal")}</span><span>${formatMoney(quote.subtotal)}</span></div>
          <div><span>${t("checkout.shipping")}</span><span>${formatMoney(quote.shipping_fee)}</span></div>
          <div class="grand"><span>${t("checkout.total")}</span><span>${formatMoney(quote.total)}</span></div>
        </div>`}
    </section>
    <${Problem} error=${placeError} t=${t} />
    <p style="text-align:right">
      <button onClick=${place} disabled=${!(quote || quoteError?.status === 404) || !body || placing}>${placing ? t("checkout.placing") : t("checkout.place")}</button>
    </p>
  `;
}

function etaText(eta, lang) {
  if (!eta) return "—";
  if (typeof eta === "string") return formatDate(eta, lang);
  return formatDate(eta.latest || eta.earliest, lang);
}
