// Browsing: home (categories, search as you type), lists, the product page.
import { html, useEffect, useRef, useState } from "../../common/html.js";
import { localized } from "../../common/i18n.js";
import { formatDate } from "../../common/i18n.js";
import { formatMoney } from "../../common/money.js";
import { addToCart } from "../cart.js";
import { Picture, Problem, Stars, chooseCity, chosenCity, loadCities, useLoad } from "./shared.js";

const SEARCH_DEBOUNCE_MS = 60;
// Answers already seen this visit: typing back to an earlier query shows it at once.
const searchCache = new Map();
const PAGE_SIZE = 12;

function ProductTiles({ items, lang, t, href }) {
  return html`<ul class="grid">
    ${items.map(
      (p) => html`<li key=${p.sku} class="card">
        <a class="tile" href=${href(`/products/${encodeURIComponent(p.sku)}`)}>
          <${Picture} product=${p} lang=${lang} t=${t} />
          <div class="name">${localized(p.name, lang)}</div>
          <div class="price">${formatMoney(p.price)}</div>
          ${p.rating?.count > 0 &&
          html`<div class="small"><${Stars} value=${p.rating.average} t=${t} /> <span class="muted">${p.rating.average.toFixed(1)} (${p.rating.count})</span></div>`}
        </a>
      </li>`,
    )}
  </ul>`;
}

export function Home(ctx) {
  const { api, t, lang, href, go } = ctx;
  const [q, setQ] = useState("");
  const [results, setResults] = useState(null);
  const [error, setError] = useState(null);
  const pending = useRef({ timer: null, controller: null, seq: 0 });
  const categories = useLoad(() => api.get("/categories", { auth: false }), []);

  function onInput(event) {
    const value = event.target.value;
    setQ(value);
    const state = pending.current;
    clearTimeout(state.timer);
    if (!value.trim()) {
      setResults(null);
      return;
    }
    const query = value.trim();
    if (searchCache.has(query)) {
      state.seq++;
      setResults(searchCache.get(query));
      return;
    }
    state.timer = setTimeout(async () => {
      const seq = ++state.seq;
      try {
        const page = await api.get("/products", { auth: false, query: { q: query, limit: 8 } });
        searchCache.set(query, { q: query, items: page.items, more: Boolean(page.next_cursor) });
        if (seq === state.seq) {
          setResults(searchCache.get(query));
          setError(null);
        }
      } catch (e) {
        if (seq === state.seq) setError(e);
      }
    }, SEARCH_DEBOUNCE_MS);
  }
  function onSubmit(event) {
    event.preventDefault();
    if (q.trim()) go(`/search?q=${encodeURIComponent(q.trim())}`);
  }

  return html`
    <h1>${t("home.title")}</h1>
    <form class="search" role="search" onSubmit=${onSubmit}>
      <input type="search" aria-label=${t("search")} placeholder=${t("search.placeholder")} value=${q} onInput=${onInput} autocomplete="off" />
      <button type="submit">${t("search")}</button>
    </form>
    <${Problem} error=${error} t=${t} />
    <section aria-live="polite" aria-label=${results ? t("search.results", { q: results.q }) : t("search")}>
      ${results &&
      html`<h2 id="results-title">${t("search.results", { q: results.q })}</h2>
        ${results.items.length
          ? html`<div data-testid="search-results"><${ProductTiles} items=${results.items} lang=${lang} t=${t} href=${href} /></div>
              ${results.more && html`<p><a href=${href(`/search?q=${encodeURIComponent(results.q)}`)}>${t("search.all")}</a></p>`}`
          : html`<p data-testid="search-results">${t("search.none", { q: results.q })}</p>`}`}
    </section>
    <h2>${t("home.categories")}</h2>
    <${Problem} error=${categories.error} t=${t} />
    ${categories.data &&
    html`<ul class="grid">
      ${categories.data.items.map(
        (c) => html`<li key=${c.id} class="card">
          <a class="tile" href=${href(`/category/${encodeURIComponent(c.id)}`)}>
            <div class="name">${localized(c.name, lang)}</div>
            <div class="muted">${t("home.count", { n: c.product_count })}</div>
          </a>
        </li>`,
      )}
    </ul>`}
  `;
}

export function ProductList(ctx) {
  const { api, t, lang, href, params, query } = ctx;
  const q = query.get("q") || "";
  const category = params.category;
  const [cursors, setCursors] = useState([null]);
  const cursor = cursors[cursors.length - 1];
  const page = useLoad(
    () => api.get("/products", { auth: false, query: { q: q || undefined, category, limit: PAGE_SIZE, cursor } }),
    [q, category, cursor],
  );
  const categories = useLoad(() => (category ? api.get("/categories", { auth: false }) : null), [category]);
  const title = category
    ? localized(categories.data?.items.find((c) => c.id === category)?.name, lang) || category
    : t("search.results", { q });
  return html`
    <h1>${title}</h1>
    <${Problem} error=${page.error} t=${t} />
    ${page.loading && html`<p>${t("loading")}</p>`}
    ${page.data &&
    html`${page.data.items.length ? html`<${ProductTiles} items=${page.data.items} lang=${lang} t=${t} href=${href} />` : html`<p>${q ? t("search.none", { q }) : t("list.empty")}</p>`}
      <nav class="row" aria-label=${t("list.page", { n: cursors.length })} style="margin-top:16px">
        ${cursors.length > 1 && html`<button class="secondary" onClick=${() => setCursors(cursors.slice(0, -1))}>${t("list.prev")}</button>`}
        <span class="muted">${t("list.page", { n: cursors.length })}</span>
        ${page.data.next_cursor && html`<button class="secondary" onClick=${() => setCursors([...cursors, page.data.next_cursor])}>${t("list.next")}</button>`}
      </nav>`}
  `;
}

export function CityPicker({ api, t, lang, city, onChange }) {
  const [cities, setCities] = useState([]);
  const [locating, setLocating] = useState(false);
  useEffect(() => {
    loadCities(api).then(setCities);
  }, []);
  function pick(event) {
    const found = cities.find((c) => c.id === event.target.value);
    if (found) onChange({ id: found.id, name: found.name, lat: found.location.lat, lon: found.location.lon });
  }
  function locate() {
    if (!navigator.geolocation) return;
    setLocating(true);
    navigator.geolocation.getCurrentPosition(
      (pos) => (setLocating(false), onChange({ id: "here", name: null, lat: pos.coords.latitude, lon: pos.coords.longitude })),
      () => setLocating(false),
      { timeout: 8000 },
    );
  }
  return html`<div class="row">
    <label for="deliver-to" style="margin:0">${t("product.deliverTo")}</label>
    <select id="deliver-to" value=${city?.id || ""} onChange=${pick}>
      <option value="">${t("product.chooseCity")}</option>
      ${city?.id === "here" && html`<option value="here">${t("product.useLocation")}</option>`}
      ${cities.map((c) => html`<option key=${c.id} value=${c.id}>${localized(c.name, lang)}</option>`)}
    </select>
    <button class="link" type="button" onClick=${locate}>${locating ? t("product.locating") : t("product.useLocation")}</button>
  </div>`;
}

export function ProductPage(ctx) {
  const { api, t, lang, params } = ctx;
  const [city, setCity] = useState(chosenCity());
  const [quantity, setQuantity] = useState(1);
  const [added, setAdded] = useState(false);
  // The reviews load on demand: the product itself shows first.
  const [Reviews, setReviews] = useState(null);
  useEffect(() => {
    import("./reviews.js").then((m) => setReviews(() => m.ProductReviews));
  }, []);
  const product = useLoad(
    () => api.get(`/products/${encodeURIComponent(params.sku)}`, { auth: false, query: city ? { lat: city.lat, lon: city.lon } : {} }),
    [params.sku, city?.lat, city?.lon],
  );
  function changeCity(next) {
    chooseCity(next);
    setCity(next);
  }
  if (product.error) {
    return html`<h1>${t("product.notFound")}</h1><${Problem} error=${product.error} t=${t} />`;
  }
  if (!product.data) return html`<p>${t("loading")}</p>`;
  const p = product.data;
  const availability = p.availability || { in_stock: false, available: 0 };
  const name = localized(p.name, lang);
  const estimate = availability.delivery_estimate;
  function add() {
    addToCart(p, quantity, availability.available);
    setAdded(true);
  }
  return html`
    <div class="product">
      <div><${Picture} product=${p} lang=${lang} t=${t} eager=${true} /></div>
      <div>
        <h1>${name}</h1>
        <p class="price" data-testid="price">${formatMoney(p.price)}</p>
        ${p.rating?.count > 0 &&
        html`<p><button class="link rating-link" onClick=${() => document.getElementById("reviews-title")?.scrollIntoView()}>
          <${Stars} value=${p.rating.average} t=${t} /> <span class="rating-text">${t("rating.short", { average: p.rating.average.toFixed(1), n: p.rating.count })}</span></button></p>`}
        <p>${localized(p.description, lang)}</p>
        <${CityPicker} api=${api} t=${t} lang=${lang} city=${city} onChange=${changeCity} />
        <div aria-live="polite" data-testid="availability">
          ${availability.in_stock
            ? html`<p class="ok">${t("product.inStock", { n: availability.available })}</p>`
            : html`<p class="error">${t("product.outOfStock")}</p>`}
          ${availability.nearest_city && html`<p>${t("product.nearest", { city: availability.nearest_city })}</p>`}
          ${estimate && html`<p>${t("product.eta", { from: formatDate(estimate.earliest, lang), to: formatDate(estimate.latest, lang) })}</p>`}
        </div>
        <div class="row">
          <label for="qty" style="margin:0">${t("product.quantity")}</label>
          <input id="qty" class="qty" type="number" min="1" max=${Math.max(availability.available, 1)} value=${quantity}
            onInput=${(e) => setQuantity(Math.max(1, Math.min(Number(e.target.value) || 1, availability.available || 1)))} />
          <button onClick=${add} disabled=${!availability.in_stock}>${t("product.addToCart")}</button>
        </div>
        <p role="status">${added ? t("product.added") : ""}</p>
      </div>
    </div>
    ${Reviews && html`<${Reviews} ...${ctx} sku=${p.sku} rating=${p.rating} />`}
  `;
}
