// ops and support: the stock grid (SKU x warehouse), and one level with its forms and ledger.
import { html, useState } from "../../common/html.js";
import { formatDate } from "../../common/i18n.js";
import { ErrorText, Loading, OPS, Pager, formValues, inGroup, useAction, useLoad, usePager } from "../ui.js";
import { categoryName, loadCategories, loadWarehouses } from "./shared.js";

const PAGE_SKUS = 20;

export function StockPage({ api, t, lang, href }) {
  const [filters, setFilters] = useState({ warehouse: "", category: "", low: false });
  const pager = usePager([filters.warehouse, filters.category, filters.low]);
  const lookups = useLoad(() => Promise.all([loadWarehouses(api), loadCategories(api)]), []);
  const grid = useLoad(
    () =>
      api.get("/stock", {
        query: {
          warehouse: filters.warehouse,
          category: filters.category,
          low: filters.low ? "true" : "",
          cursor: pager.cursor,
          limit: PAGE_SKUS,
        },
      }),
    [filters.warehouse, filters.category, filters.low, pager.cursor],
  );
  const [warehouses, categories] = lookups.data || [[], []];
  const shown = filters.warehouse ? warehouses.filter((w) => w.id === filters.warehouse) : warehouses;
  const rows = new Map();
  for (const level of grid.data?.items || []) {
    if (!rows.has(level.sku)) rows.set(level.sku, {});
    rows.get(level.sku)[level.warehouse] = level;
  }
  const set = (name) => (event) =>
    setFilters({ ...filters, [name]: event.target.type === "checkbox" ? event.target.checked : event.target.value });
  return html`<h1>${t("stock.title")}</h1>
    <div class="row" role="search">
      <label>${t("stock.warehouse")}
        <select value=${filters.warehouse} onChange=${set("warehouse")}>
          <option value="">${t("all")}</option>
          ${warehouses.map((w) => html`<option value=${w.id}>${w.name}</option>`)}
        </select>
      </label>
      <label>${t("stock.category")}
        <select value=${filters.category} onChange=${set("category")}>
          <option value="">${t("all")}</option>
          ${categories.map((c) => html`<option value=${c.id}>${categoryName(c, lang)}</option>`)}
        </select>
      </label>
      <label class="check"><input type="checkbox" checked=${filters.low} onChange=${set("low")} /> ${t("stock.lowOnly")}</label>
    </div>
    <p class="muted">${t("stock.legend")}</p>
    <${ErrorText} error=${grid.error || lookups.error} t=${t} />
    ${grid.loading && !grid.data ? html`<${Loading} t=${t} />` : html`
      <table>
        <caption class="muted">${t("stock.caption")}</caption>
        <thead><tr><th scope="col">SKU</th>${shown.map((w) => html`<th scope="col">${w.name}</th>`)}</tr></thead>
        <tbody>
          ${[...rows].map(([sku, levels]) => html`<tr>
            <th scope="row">${sku}</th>
            ${shown.map((w) => {
              const level = levels[w.id];
              if (!level) return html`<td class="muted">–</td>`;
              const low = level.available <= level.low_stock_threshold;
              return html`<td class=${low ? "num low" : "num"} data-cell=${`${sku}/${w.id}`}>
                <a href=${href(`/stock/${encodeURIComponent(sku)}/${encodeURIComponent(w.id)}`)} aria-label=${t("stock.cellLabel", { sku, warehouse: w.name })}>
                  ${level.on_hand} / ${level.reserved} / <strong>${level.available}</strong>
                </a>${low ? html` <span class="badge">${t("stock.low")}</span>` : ""}
              </td>`;
            })}
          </tr>`)}
        </tbody>
      </table>
      ${rows.size === 0 && html`<p>${t("empty")}</p>`}
      <${Pager} pager=${pager} nextCursor=${grid.data?.next_cursor} t=${t} />`}`;
}

export function LevelPage({ api, t, lang, params, user, href }) {
  const { sku, warehouse } = params;
  const path = `/stock/${encodeURIComponent(sku)}/${encodeURIComponent(warehouse)}`;
  const pager = usePager([sku, warehouse]);
  const level = useLoad(() => api.get(`/stock/${encodeURIComponent(sku)}`), [sku]);
  const ledger = useLoad(() => api.get(`${path}/ledger`, { query: { cursor: pager.cursor, limit: 20 } }), [pager.cursor]);
  const lookups = useLoad(() => loadWarehouses(api), []);
  const here = level.data?.warehouses.find((w) => w.warehouse === warehouse);
  const refresh = () => (level.reload(), ledger.reload());
  const canWrite = inGroup(user, OPS);
  return html`<p><a href=${href("/stock")}>← ${t("stock.title")}</a></p>
    <h1>${t("level.title", { sku, warehouse })}</h1>
    <${ErrorText} error=${level.error} t=${t} />
    ${here && html`<dl class="facts panel" aria-label=${t("level.now")}>
      <dt>${t("level.onHand")}</dt><dd data-field="on_hand">${here.on_hand}</dd>
      <dt>${t("level.reserved")}</dt><dd data-field="reserved">${here.reserved}</dd>
      <dt>${t("level.available")}</dt><dd data-field="available">${here.available}</dd>
      <dt>${t("level.threshold")}</dt><dd>${here.low_stock_threshold}</dd>
    </dl>`}
    ${canWrite && html`<div class="cards">
      <${Receive} api=${api} t=${t} path=${path} done=${refresh} />
      <${Adjust} api=${api} t=${t} path=${path} done=${refresh} />
      <${Transfer} api=${api} t=${t} sku=${sku} from=${warehouse} warehouses=${lookups.data || []} done=${refresh} />
      <${Threshold} api=${api} t=${t} path=${path} current=${here?.low_stock_threshold} done=${refresh} />
    </div>`}
    <h2>${t("level.ledger")}</h2>
    <${ErrorText} error=${ledger.error} t=${t} />
    <table>
      <thead><tr>
        <th scope="col">${t("ledger.at")}</th><th scope="col">${t("ledger.type")}</th><th scope="col" class="num">${t("ledger.quantity")}</th>
        <th scope="col" class="num">${t("level.onHand")}</th><th scope="col" class="num">${t("level.reserved")}</th>
        <th scope="col">${t("ledger.reference")}</th><th scope="col">${t("ledger.note")}</th><th scope="col">${t("ledger.actor")}</th>
      </tr></thead>
      <tbody>${(ledger.data?.items || []).map((e) => html`<tr>
        <td>${formatDate(e.at, lang, true)}</td><td>${t("movement." + e.type)}${e.reason ? ` (${t("reason." + e.reason)})` : ""}</td>
        <td class="num">${e.quantity}</td><td class="num">${e.on_hand}</td><td class="num">${e.reserved}</td>
        <td>${e.reference || ""}</td><td>${e.note || ""}</td><td>${e.actor}</td>
      </tr>`)}</tbody>
    </table>
    <${Pager} pager=${pager} nextCursor=${ledger.data?.next_cursor} t=${t} />`;
}

function Receive({ api, t, path, done }) {
  const action = useAction(t);
  async function submit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const v = formValues(form);
    const ok = await action.run(() => api.post(`${path}/receive`, { quantity: Number(v.quantity), note: v.note || null }), t("level.received"));
    if (ok) (form.reset(), done());
  }
  return html`<form class="panel" onSubmit=${submit} aria-labelledby="receive-title">
    <h2 id="receive-title">${t("level.receive")}</h2>
    <div class="row">
      <label>${t("level.quantity")}<input name="quantity" type="number" min="1" required /></label>
      <label>${t("level.note")}<input name="note" maxlength="500" /></label>
    </div>
    <button disabled=${action.busy}>${t("level.receive")}</button>${action.status}
  </form>`;
}

function Adjust({ api, t, path, done }) {
  const action = useAction(t);
  async function submit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const v = formValues(form);
    const body = { delta: Number(v.delta), reason: v.reason, note: v.note || null };
    const ok = await action.run(() => api.post(`${path}/adjust`, body), t("level.adjusted"));
    if (ok) (form.reset(), done());
  }
  return html`<form class="panel" onSubmit=${submit} aria-labelledby="adjust-title">
    <h2 id="adjust-title">${t("level.adjust")}</h2>
    <div class="row">
      <label>${t("level.delta")}<input name="delta" type="number" required /></label>
      <label>${t("level.reason")}<select name="reason">
        ${["count", "damage", "loss", "found", "other"].map((r) => html`<option value=${r}>${t("reason." + r)}</option>`)}
      </select></label>
      <label>${t("level.note")}<input name="note" maxlength="500" /></label>
    </div>
    <button disabled=${action.busy}>${t("level.adjust")}</button>${action.status}
  </form>`;
}

function Transfer({ api, t, sku, from, warehouses, done }) {
  const action = useAction(t);
  async function submit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const v = formValues(form);
    const body = { sku, from, to: v.to, quantity: Number(v.quantity), note: v.note || null };
    const ok = await action.run(() => api.post("/transfers", body), t("level.transferred"));
    if (ok) (form.reset(), done());
  }
  return html`<form class="panel" onSubmit=${submit} aria-labelledby="transfer-title">
    <h2 id="transfer-title">${t("level.transfer")}</h2>
    <div class="row">
      <label>${t("level.to")}<select name="to" required>
        ${warehouses.filter((w) => w.id !== from).map((w) => html`<option value=${w.id}>${w.name}</option>`)}
      </select></label>
      <label>${t("level.quantity")}<input name="quantity" type="number" min="1" required /></label>
      <label>${t("level.note")}<input name="note" maxlength="500" /></label>
    </div>
    <button disabled=${action.busy}>${t("level.transfer")}</button>${action.status}
  </form>`;
}

function Threshold({ api, t, path, current, done }) {
  const action = useAction(t);
  async function submit(event) {
    event.preventDefault();
    const v = formValues(event.currentTarget);
    const ok = await action.run(() => api.put(`${path}/threshold`, { low_stock_threshold: Number(v.threshold) }));
    if (ok) done();
  }
  return html`<form class="panel" onSubmit=${submit} aria-labelledby="threshold-title">
    <h2 id="threshold-title">${t("level.threshold")}</h2>
    <div class="row"><label>${t("level.threshold")}<input name="threshold" type="number" min="0" required value=${current ?? ""} /></label></div>
    <button disabled=${action.busy}>${t("save")}</button>${action.status}
  </form>`;
}
