// Money arrives as integer minor units with a currency: {amount: 123450, currency: "CNY"}.
const SYMBOLS = { CNY: "¥", USD: "$", EUR: "€", HKD: "HK$" };
const DIGITS = { JPY: 0, KRW: 0 };

/** ¥1,234.50 for {amount: 123450, currency: "CNY"}; integers only, no floating point. */
export function formatMoney(money) {
  if (!money || typeof money.amount !== "number") return "";
  const digits = DIGITS[money.currency] ?? 2;
  const negative = money.amount < 0;
  const minor = String(Math.abs(money.amount)).padStart(digits + 1, "0");
  const whole = digits ? minor.slice(0, -digits) : minor;
  const fraction = digits ? "." + minor.slice(-digits) : "";
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const symbol = SYMBOLS[money.currency] ?? money.currency + " ";
  return `${negative ? "-" : ""}${symbol}${grouped}${fraction}`;
}

export function multiply(money, quantity) {
  return { amount: money.amount * quantity, currency: money.currency };
}

export function sum(items, currency = "CNY") {
  return { amount: items.reduce((total, m) => total + m.amount, 0), currency };
}
