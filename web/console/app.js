// The staff console: one page app under /console/, talking only to the public API.
import { html, useEffect, useState } from "../common/html.js";
import { initialLanguage, rememberLanguage, translator } from "../common/i18n.js";
import { match } from "../common/router.js";
import { startApp } from "../common/start.js";
import { messages } from "./messages.js";
import { FINANCE, OPS, STAFF_GROUPS, SUPPORT, inGroup } from "./ui.js";

const BASE = "/console/";
const screens = {
  dashboard: () => import("./pages/dashboard.js"),
  stock: () => import("./pages/stock.js"),
  catalogue: () => import("./pages/catalogue.js"),
  orders: () => import("./pages/orders.js"),
  fulfilment: () => import("./pages/fulfilment.js"),
  alerts: () => import("./pages/alerts.js"),
  finance: () => import("./pages/finance.js"),
  support: () => import("./pages/support.js"),
  reviews: () => import("./pages/reviews.js"),
};

// [path, screen module, component, groups that may open it, nav label key]
const ROUTES = [
  ["/dashboard", "dashboard", "DashboardPage", [OPS, FINANCE], "nav.dashboard"],
  ["/stock", "stock", "StockPage", [OPS, SUPPORT], "nav.stock"],
  ["/stock/:sku/:warehouse", "stock", "LevelPage", [OPS, SUPPORT]],
  ["/products", "catalogue", "ProductsPage", [OPS], "nav.products"],
  ["/products/:sku", "catalogue", "ProductEditor", [OPS]],
  ["/warehouses", "catalogue", "WarehousesPage", [OPS], "nav.warehouses"],
  ["/orders", "orders", "OrdersBoard", [OPS], "nav.orders"],
  ["/orders/:orderId", "orders", "OrderDetail", [OPS, SUPPORT]],
  ["/fulfilment", "fulfilment", "FulfilmentPage", [OPS], "nav.fulfilment"],
  ["/alerts", "alerts", "AlertsPage", [OPS], "nav.alerts"],
  ["/queues", "alerts", "QueuesPage", [OPS], "nav.queues"],
  ["/conversations", "support", "QueuePage", [SUPPORT, OPS], "nav.conversations"],
  ["/conversations/:conversationId", "support", "ConversationPage", [SUPPORT, OPS]],
  ["/canned-replies", "support", "CannedRepliesPage", [SUPPORT, OPS], "nav.canned"],
  ["/support", "orders", "SupportPage", [SUPPORT], "nav.support"],
  ["/reviews", "reviews", "ReviewsPage", [OPS, SUPPORT], "nav.reviews"],
  ["/reports", "finance", "ReportsPage", [FINANCE], "nav.reports"],
  ["/reconciliation", "finance", "ReconciliationPage", [FINANCE], "nav.reconciliation"],
];

function home(user) {
  if (inGroup(user, OPS, FINANCE)) return "/dashboard";
  if (inGroup(user, SUPPORT)) return "/conversations";
  return "/";
}

function App({ config, auth, api, router }) {
  const [route, setRoute] = useState(router.current());
  const [lang, setLang] = useState(initialLanguage());
  const [user, setUser] = useState(auth.user());
  const [Page, setPage] = useState(null);
  const t = translator(messages, lang);

  useEffect(() => {
    router.onChange = setRoute;
    return auth.onChange(setUser);
  }, []);
  useEffect(() => {
    rememberLanguage(lang);
    document.title = t("app.name");
  }, [lang]);

  const isCallback = route.path === "/callback";
  const staff = inGroup(user, ...STAFF_GROUPS);
  let found = null;
  for (const entry of ROUTES) {
    const params = match(entry[0], route.path);
    if (params) found = { entry, params };
  }
  const allowed = found && inGroup(user, ...found.entry[3]);
  useEffect(() => {
    if (staff && (route.path === "/" || route.path === "")) router.go(home(user), { replace: true });
  }, [staff, route.path]);
  useEffect(() => {
    let live = true;
    setPage(null);
    if (found && allowed) {
      const [, module, name] = found.entry;
      screens[module]().then((m) => live && setPage(() => m[name]));
    }
    return () => (live = false);
  }, [route.path, allowed]);

  const ctx = { config, api, auth, user, t, lang, go: router.go, href: router.href, query: route.query, params: found?.params || {} };
  const switchTo = lang === "zh-CN" ? "en" : "zh-CN";
  let body;
  if (isCallback) body = html`<${Callback} ...${ctx} />`;
  else if (!user) body = html`<${SignIn} ...${ctx} />`;
  else if (!staff) body = html`<${NotStaff} ...${ctx} />`;
  else if (!found) body = html`<h1>${t("notFound")}</h1>`;
  else if (!allowed) body = html`<h1>${t("error.forbidden")}</h1>`;
  else body = Page ? html`<${Page} key=${route.path + route.query} ...${ctx} />` : html`<p role="status">${t("loading")}</p>`;

  const links = ROUTES.filter((r) => r[4] && inGroup(user, ...r[3]));
  return html`
    <a class="skip" href="#content">${t("skip")}</a>
    <div class="shell">
      <header class="side">
        <a class="brand" href=${BASE}>${t("app.name")}</a>
        ${staff && html`<nav aria-label=${t("nav.main")}><ul>
          ${links.map(([path, , , , label]) => html`<li><a href=${router.href(path)} aria-current=${route.path.startsWith(path) ? "page" : undefined}>${t(label)}</a></li>`)}
        </ul></nav>`}
        <div class="who">
          ${user && html`<p>${user.name || user.id} <span class="badge">${(user.groups || []).join(", ") || "-"}</span></p>`}
          <button class="secondary" lang=${switchTo} aria-label=${t("lang.switchLabel")} onClick=${() => setLang(switchTo)}>${t("lang.switch")}</button>
          ${user && html`<button class="secondary" onClick=${() => auth.signOut()}>${t("nav.signOut")}</button>`}
        </div>
      </header>
      <main id="content" tabindex="-1">${body}</main>
    </div>
  `;
}

function SignIn({ auth, t, lang }) {
  return html`<h1>${t("signin.title")}</h1>
    <p>${t("signin.intro")}</p>
    <button onClick=${() => auth.signIn(undefined, lang)}>${t("nav.signIn")}</button>`;
}

function NotStaff({ t, config }) {
  return html`<h1>${t("notStaff.title")}</h1>
    <p role="alert">${t("notStaff.body")}</p>
    <p><a href="/shop/">${t("notStaff.shop")}</a></p>`;
}

function Callback({ auth, t, go }) {
  const [error, setError] = useState(null);
  useEffect(() => {
    auth.completeSignIn().then((to) => go(to === BASE ? "/" : to, { replace: true }), (e) => setError(e.message));
  }, []);
  return html`<h1>${t("nav.signIn")}</h1>
    ${error ? html`<p class="error" role="alert">${t("error.signIn", { message: error })}</p>` : html`<p>${t("signin.completing")}</p>`}`;
}

startApp(BASE, App);
