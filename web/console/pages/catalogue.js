// ops: products (list and editor) and warehouses.
import { html, useState } from "../../common/html.js";
import { localized } from "../../common/i18n.js";
import { ErrorText, Loading, Pager, formValues, fromMinor, money, toMinor, useAction, useLoad, usePager } from "../ui.js";
import { categoryName, loadCategories, loadWarehouses } from "./shared.js";

export function ProductsPage({ api, t, lang, href }) {
  const [category, setCategory] = useState("");
  const pager = usePager([category]);
  const categories = useLoad(() => loadCategories(api), []);
  const list = useLoad(() => api.get("/products", { query: { category, cursor: pager.cursor, limit: 25 } }), [category, pager.cursor]);
  return html`<h1>${t("products.title")}</h1>
    <div class="row">
      <label>${t("stock.category")}
        <select value=${category} onChange=${(e) => setCategory(e.target.value)}>
          <option value="">${t("all")}</option>
          ${(categories.data || []).map((c) => html`<option value=${c.id}>${categoryName(c, lang)}</option>`)}
        </select>
      </label>
      <a href=${href("/products/new")}>${t("products.new")}</a>
    </div>
    <${ErrorText} error=${list.error} t=${t} />
    ${list.loading && !list.data ? html`<${Loading} t=${t} />` : html`<table>
      <thead><tr><th scope="col">SKU</th><th scope="col">${t("products.name")}</th><th scope="col">${t("stock.category")}</th>
        <th scope="col" class="num">${t("products.price")}</th><th scope="col">${t("products.active")}</th></tr></thead>
      <tbody>${(list.data?.items || []).map((p) => html`<tr>
        <td><a href=${href("/products/" + encodeURIComponent(p.sku))}>${p.sku}</a></td>
        <td>${localized(p.name, lang)}</td><td>${p.category}</td><td class="num">${money(p.price)}</td>
        <td>${p.active ? t("yes") : t("no")}</td>
      </tr>`)}</tbody>
    </table>
    <${Pager} pager=${pager} nextCursor=${list.data?.next_cursor} t=${t} />`}`;
}

function pair(zh, en) {
  return Object.fromEntries([["zh-CN", zh], ["en", en]].filter(([, text]) => text && text.trim()));
}

const blankProduct = { name: {}, description: {}, category: "", price: { amount: 0, currency: "CNY" }, images: [], active: true };

export function ProductEditor({ api, t, params, go, href }) {
  const isNew = params.sku === "new";
  const loaded = useLoad(() => (isNew ? blankProduct : api.get(`/products/${encodeURIComponent(params.sku)}`)), [params.sku]);
  const action = useAction(t);
  async function submit(event) {
    event.preventDefault();
    const v = formValues(event.currentTarget);
    const sku = isNew ? v.sku.trim() : params.sku;
    const optionalInt = (text) => (text === "" || text === undefined ? null : Number(text));
    const body = {
      name: pair(v.name_zh, v.name_en),
      description: pair(v.description_zh, v.description_en),
      category: v.category.trim(),
      price: { amount: toMinor(v.price), currency: "CNY" },
      images: v.images.split("\n").map((s) => s.trim()).filter(Boolean),
      active: v.active === "on",
      default_low_stock_threshold: optionalInt(v.threshold),
      unit_cost: v.unit_cost ? { amount: toMinor(v.unit_cost), currency: "CNY" } : null,
      lead_time_days: optionalInt(v.lead_time),
      target_days_of_cover: optionalInt(v.cover),
    };
    const saved = await action.run(() => api.put(`/products/${encodeURIComponent(sku)}`, body));
    if (saved && isNew) go(`/products/${encodeURIComponent(sku)}`, { replace: true });
  }
  if (loaded.error) return html`<${ErrorText} error=${loaded.error} t=${t} />`;
  if (!loaded.data) return html`<${Loading} t=${t} />`;
  const p = loaded.data;
  return html`<p><a href=${href("/products")}>← ${t("products.title")}</a></p>
    <h1>${isNew ? t("products.new") : t("products.edit", { sku: params.sku })}</h1>
    <form class="panel" onSubmit=${submit}>
      ${isNew && html`<div class="row"><label>SKU<input name="sku" required pattern="[A-Za-z0-9._\\-]{1,64}" /></label></div>`}
      <div class="row">
        <label>${t("products.nameZh")}<input name="name_zh" lang="zh-CN" value=${p.name?.["zh-CN"] || ""} size="30" /></label>
        <label>${t("products.nameEn")}<input name="name_en" lang="en" value=${p.name?.en || ""} size="30" /></label>
      </div>
      <div class="row">
        <label>${t("products.descriptionZh")}<textarea name="description_zh" lang="zh-CN" cols="40">${p.description?.["zh-CN"] || ""}</textarea></label>
        <label>${t("products.descriptionEn")}<textarea name="description_en" lang="en" cols="40">${p.description?.en || ""}</textarea></label>
      </div>
      <div class="row">
        <label>${t("stock.category")}<input name="category" required value=${p.category} /></label>
        <label>${t("products.priceYuan")}<input name="price" required inputmode="decimal" pattern="\\d+(\\.\\d{1,2})?" value=${fromMinor(p.price?.amount)} /></label>
        <label class="check"><input type="checkbox" name="active" checked=${p.active} /> ${t("products.active")}</label>
      </div>
      <label>${t("products.images")}<textarea name="images" cols="60">${(p.images || []).join("\n")}</textarea></label>
      <div class="row">
        <label>${t("products.threshold")}<input name="threshold" type="number" min="0" value=${p.default_low_stock_threshold ?? ""} /></label>
        <label>${t("products.unitCost")}<input name="unit_cost" inputmode="decimal" pattern="\\d+(\\.\\d{1,2})?" value=${p.unit_cost ? fromMinor(p.unit_cost.amount) : ""} /></label>
        <label>${t("products.leadTime")}<input name="lead_time" type="number" min="0" value=${p.lead_time_days ?? ""} /></label>
        <label>${t("products.cover")}<input name="cover" type="number" min="0" value=${p.target_days_of_cover ?? ""} /></label>
      </div>
      <button disabled=${action.busy}>${t("save")}</button>${action.status}
    </form>`;
}

export function WarehousesPage({ api, t }) {
  const list = useLoad(() => loadWarehouses(api, { fresh: true }), []);
  const [editing, setEditing] = useState(null);
  const action = useAction(t);
  async function submit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const v = formValues(form);
    const body = { name: v.name, city: v.city, location: { lat: Number(v.lat), lon: Number(v.lon) } };
    // Where carriers collect parcels: all four address parts, or none.
    if ([v.region, v.address_city, v.line1, v.postcode].every((x) => x && x.trim())) {
      body.address = { region: v.region, city: v.address_city, line1: v.line1, postcode: v.postcode };
    }
    if (v.contact_name) body.contact_name = v.contact_name;
    if (v.phone) body.phone = v.phone;
    const ok = await action.run(() => api.put(`/warehouses/${encodeURIComponent(v.id.trim())}`, body));
    if (ok) (setEditing(null), form.reset(), list.reload());
  }
  const w = editing || {};
  return html`<h1>${t("warehouses.title")}</h1>
    <${ErrorText} error=${list.error} t=${t} />
    <table>
      <thead><tr><th scope="col">ID</th><th scope="col">${t("warehouses.name")}</th><th scope="col">${t("warehouses.city")}</th>
        <th scope="col">${t("warehouses.location")}</th><th scope="col"><span class="skip">${t("edit")}</span></th></tr></thead>
      <tbody>${(list.data || []).map((row) => html`<tr>
        <td>${row.id}</td><td>${row.name}</td><td>${row.city}</td><td>${row.location.lat}, ${row.location.lon}${row.can_book === false ? html` <span class="badge">${t("warehouses.cannotBook")}</span>` : ""}</td>
        <td><button class="secondary" onClick=${() => setEditing(row)} aria-label=${t("edit") + " " + row.id}>${t("edit")}</button></td>
      </tr>`)}</tbody>
    </table>
    <form class="panel" onSubmit=${submit} key=${w.id || "new"}>
      <h2>${editing ? t("warehouses.edit", { id: w.id }) : t("warehouses.new")}</h2>
      <div class="row">
        <label>ID<input name="id" required readonly=${!!editing} value=${w.id || ""} pattern="[A-Za-z0-9._\\-]{1,64}" /></label>
        <label>${t("warehouses.name")}<input name="name" required value=${w.name || ""} /></label>
        <label>${t("warehouses.city")}<input name="city" required value=${w.city || ""} /></label>
        <label>${t("warehouses.lat")}<input name="lat" required type="number" step="any" min="-90" max="90" value=${w.location?.lat ?? ""} /></label>
        <label>${t("warehouses.lon")}<input name="lon" required type="number" step="any" min="-180" max="180" value=${w.location?.lon ?? ""} /></label>
      </div>
      <div class="row">
        <label>${t("warehouses.region")}<input name="region" value=${w.address?.region || ""} /></label>
        <label>${t("warehouses.addressCity")}<input name="address_city" value=${w.address?.city || ""} /></label>
        <label>${t("warehouses.line1")}<input name="line1" size="30" value=${w.address?.line1 || ""} /></label>
        <label>${t("warehouses.postcode")}<input name="postcode" size="8" value=${w.address?.postcode || ""} /></label>
        <label>${t("warehouses.contact")}<input name="contact_name" value=${w.contact_name || ""} /></label>
        <label>${t("warehouses.phone")}<input name="phone" type="tel" value=${w.phone || ""} /></label>
      </div>
      <button disabled=${action.busy}>${t("save")}</button>
      ${editing && html` <button type="button" class="secondary" onClick=${() => setEditing(null)}>${t("cancel")}</button>`}
      ${action.status}
    </form>`;
}
