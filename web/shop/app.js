// The storefront: one page app under /shop/, talking only to the public API.
import { html, useEffect, useState } from "../common/html.js";
import { initialLanguage, rememberLanguage, translator } from "../common/i18n.js";
import { match } from "../common/router.js";
import { startApp } from "../common/start.js";
import { cartItems, onCartChange } from "./cart.js";
import { messages } from "./messages.js";
import { Home, ProductList, ProductPage } from "./pages/catalogue.js";

const BASE = "/shop/";
// Pages a first visit rarely needs load on demand, keeping the home page small.
const lazy = {
  cart: () => import("./pages/checkout.js"),
  orders: () => import("./pages/orders.js"),
  account: () => import("./pages/account.js"),
  pay: () => import("./pages/pay.js"),
  help: () => import("./pages/help.js"),
  reviews: () => import("./pages/reviews.js"),
};

const ROUTES = [
  ["/", () => Home],
  ["/search", () => ProductList],
  ["/category/:category", () => ProductList],
  ["/products/:sku", () => ProductPage],
  ["/cart", async () => (await lazy.cart()).CartPage],
  ["/checkout", async () => (await lazy.cart()).CheckoutPage],
  ["/orders", async () => (await lazy.orders()).OrdersPage],
  ["/orders/:orderId", async () => (await lazy.orders()).OrderPage],
  ["/orders/:orderId/pay", async () => (await lazy.pay()).PayPage],
  ["/orders/:orderId/review", async () => (await lazy.reviews()).ReviewPage],
  ["/account", async () => (await lazy.account()).AccountPage],
  ["/callback", () => Callback],
];

function resolve(path) {
  for (const [pattern, load] of ROUTES) {
    const params = match(pattern, path);
    if (params) return { load, params };
  }
  return { load: () => NotFound, params: {} };
}

function App({ config, auth, api, router }) {
  const [route, setRoute] = useState(router.current());
  const [lang, setLang] = useState(initialLanguage());
  const [user, setUser] = useState(auth.user());
  const [cartCount, setCartCount] = useState(count(cartItems()));
  const [Page, setPage] = useState(null);
  // The help panel: null while closed, else {orderId?} (opened from an order page).
  const [help, setHelp] = useState(null);
  const [HelpPanel, setHelpPanel] = useState(null);
  const t = translator(messages, lang);

  useEffect(() => {
    router.onChange = setRoute;
    const offCart = onCartChange((items) => setCartCount(count(items)));
    const offAuth = auth.onChange(setUser);
    return () => (offCart(), offAuth());
  }, []);
  useEffect(() => {
    rememberLanguage(lang);
    document.title = t("app.name");
  }, [lang]);
  const { load, params } = resolve(route.path);
  useEffect(() => {
    let live = true;
    Promise.resolve(load()).then((component) => live && setPage(() => component));
    return () => (live = false);
  }, [route.path]);
  useEffect(() => {
    if (help && !HelpPanel) lazy.help().then((m) => setHelpPanel(() => m.HelpPanel));
  }, [help]);
  const openHelp = (orderId) => setHelp({ orderId });

  const ctx = { config, api, auth, user, t, lang, go: router.go, href: router.href, query: route.query, params, openHelp };
  const switchTo = lang === "zh-CN" ? "en" : "zh-CN";
  return html`
    <a class="skip" href="#content">${lang === "zh-CN" ? "跳到正文" : "Skip to content"}</a>
    <header class="top">
      <div class="bar">
        <a class="brand" href=${BASE}>${t("app.name")}</a>
        <nav class="main" aria-label=${t("nav.main")}>
          <ul>
            <li><a href=${router.href("/cart")}>${t("nav.cartCount", { n: cartCount })}</a></li>
            ${user && html`<li><a href=${router.href("/orders")}>${t("nav.orders")}</a></li>`}
            ${user && html`<li><a href=${router.href("/account")}>${t("nav.account")}</a></li>`}
            <li>
              ${user
                ? html`<button class="secondary" onClick=${() => auth.signOut()}>${t("nav.signOut")}</button>`
                : html`<button class="secondary" onClick=${() => auth.signIn(undefined, lang)}>${t("nav.signIn")}</button>`}
            </li>
            <li>
              <button class="secondary" aria-expanded=${help ? "true" : "false"} onClick=${() => setHelp(help ? null : {})}>${t("nav.help")}</button>
            </li>
            <li>
              <button class="secondary lang" lang=${switchTo} aria-label=${t("lang.switchLabel")} onClick=${() => setLang(switchTo)}>
                ${t("lang.switch")}
              </button>
            </li>
          </ul>
        </nav>
      </div>
    </header>
    <main id="content" tabindex="-1">
      ${Page ? html`<${Page} key=${route.path} ...${ctx} />` : html`<p>${t("loading")}</p>`}
    </main>
    ${help && HelpPanel && html`<${HelpPanel} ...${ctx} request=${help} onClose=${() => setHelp(null)} />`}
  `;
}

function count(items) {
  return items.reduce((n, item) => n + item.quantity, 0);
}

function Callback({ auth, t, go }) {
  const [error, setError] = useState(null);
  useEffect(() => {
    auth.completeSignIn().then((to) => go(to, { replace: true }), (e) => setError(e.message));
  }, []);
  return html`<h1>${t("nav.signIn")}</h1>
    ${error ? html`<p class="error" role="alert">${t("error.signIn", { message: error })}</p>` : html`<p>${t("signin.completing")}</p>`}`;
}

function NotFound({ t, href }) {
  return html`<h1>${t("notFound")}</h1><p><a href=${href("/")}>${t("nav.home")}</a></p>`;
}

startApp(BASE, App);
