// The cart lives in localStorage, so it survives reloads and the sign-in round trip.
const KEY = "orderdesk.cart";
const listeners = new Set();

export function cartItems() {
  try {
    const items = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(items) ? items : [];
  } catch {
    return [];
  }
}

function save(items) {
  localStorage.setItem(KEY, JSON.stringify(items));
  for (const fn of listeners) fn(items);
}

/** Add quantity of a product, never more than it has available. */
export function addToCart(product, quantity, available) {
  const items = cartItems();
  const existing = items.find((item) => item.sku === product.sku);
  const max = Math.max(0, available ?? Infinity);
  if (existing) {
    existing.quantity = Math.min(existing.quantity + quantity, max);
    existing.max = available ?? existing.max;
  } else {
    items.push({ sku: product.sku, name: product.name, price: product.price, quantity: Math.min(quantity, max), max: available ?? null });
  }
  save(items.filter((item) => item.quantity > 0));
}

export function setQuantity(sku, quantity) {
  const items = cartItems().map((item) => {
    if (item.sku !== sku) return item;
    const cap = item.max ?? Infinity;
    return { ...item, quantity: Math.max(0, Math.min(quantity, cap)) };
  });
  save(items.filter((item) => item.quantity > 0));
}

/** Replace what the cart knows about a product (fresh price and availability). */
export function refreshItem(product, available) {
  const items = cartItems().map((item) =>
    item.sku === product.sku
      ? { ...item, name: product.name, price: product.price, max: available, quantity: Math.min(item.quantity, available) }
      : item,
  );
  save(items.filter((item) => item.quantity > 0));
}

export function clearCart() {
  save([]);
}

export function onCartChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

addEventListener("storage", (event) => {
  if (event.key === KEY) for (const fn of listeners) fn(cartItems());
});
