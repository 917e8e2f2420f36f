// Lookups several console screens need (kept per page load: they change rarely).
import { localized } from "../../common/i18n.js";

let warehouses = null;
let categories = null;

export function loadWarehouses(api, { fresh = false } = {}) {
  if (fresh || !warehouses) warehouses = api.get("/warehouses").then((b) => b.items);
  return warehouses;
}

export function loadCategories(api) {
  categories ??= api.get("/categories").then((b) => b.items);
  return categories;
}

export function categoryName(category, lang) {
  return typeof category.name === "object" ? localized(category.name, lang) || category.id : category.name || category.id;
}
