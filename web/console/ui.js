// Small pieces every console screen shares: loading data, errors, paging, SVG charts.
import { html, useCallback, useEffect, useState } from "../common/html.js";
import { formatMoney } from "../common/money.js";

export const OPS = "ops";
export const FINANCE = "finance";
export const SUPPORT = "support";
export const STAFF_GROUPS = [OPS, FINANCE, SUPPORT];

export function inGroup(user, ...groups) {
  return !!user && groups.some((g) => (user.groups || []).includes(g));
}

/** Run load() now and whenever deps change; {data, error, loading, reload}. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true, error: null }));
    Promise.resolve()
      .then(load)
      .then(
        (data) => live && setState({ data, error: null, loading: false }),
        (error) => live && setState({ data: null, error, loading: false }),
      );
    return () => (live = false);
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { ...state, reload };
}

/** An API error as a sentence (the API's message is text, never markup). */
export function ErrorText({ error, t }) {
  if (!error) return null;
  const message = error.status === 403 ? t("error.forbidden") : error.message || String(error);
  return html`<p class="error" role="alert">${message}</p>`;
}

export function Loading({ t }) {
  return html`<p class="muted" role="status">${t("loading")}</p>`;
}

export function money(m) {
  return formatMoney(m);
}

/** A form's values as a plain object (every field by its name). */
export function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

/** Parse "12.50" into minor units (1250) without floating point; NaN if not a price. */
export function toMinor(text) {
  const match = /^\s*(\d+)(?:\.(\d{1,2}))?\s*$/.exec(text || "");
  if (!match) return NaN;
  return Number(match[1]) * 100 + Number((match[2] || "0").padEnd(2, "0"));
}

export function fromMinor(amount) {
  if (typeof amount !== "number") return "";
  const minor = String(Math.abs(amount)).padStart(3, "0");
  return `${amount < 0 ? "-" : ""}${minor.slice(0, -2)}.${minor.slice(-2)}`;
}

/** A submit handler that shows progress, the result or the error. */
export function useAction(t) {
  const [state, setState] = useState({ busy: false, error: null, done: null });
  async function run(action, doneText) {
    setState({ busy: true, error: null, done: null });
    try {
      const result = await action();
      setState({ busy: false, error: null, done: doneText || t("saved") });
      return result;
    } catch (error) {
      setState({ busy: false, error, done: null });
      return undefined;
    }
  }
  const status = html`${state.error && html`<${ErrorText} error=${state.error} t=${t} />`}${
    state.done && html`<p class="notice" role="status">${state.done}</p>`
  }`;
  return { ...state, run, status };
}

/** Next-page navigation over opaque cursors (a stack of the cursors seen). */
export function usePager(deps) {
  const [stack, setStack] = useState([null]);
  useEffect(() => setStack([null]), deps);
  const cursor = stack[stack.length - 1];
  return {
    cursor,
    page: stack.length,
    next: (c) => c && setStack([...stack, c]),
    back: () => stack.length > 1 && setStack(stack.slice(0, -1)),
  };
}

export function Pager({ pager, nextCursor, t }) {
  return html`<div class="pager">
    <button class="secondary" disabled=${pager.page <= 1} onClick=${pager.back}>${t("page.previous")}</button>
    <span class="muted">${t("page.number", { n: pager.page })}</span>
    <button class="secondary" disabled=${!nextCursor} onClick=${() => pager.next(nextCursor)}>${t("page.next")}</button>
  </div>`;
}

// --- charts: plain SVG, labelled for screen readers ---------------------------------------

const W = 640;
const H = 220;
const PAD = { left: 56, right: 8, top: 12, bottom: 36 };

/** Vertical bars: points [{label, value, text}]. */
export function BarChart({ title, points, alt = false }) {
  const max = Math.max(1, ...points.map((p) => p.value));
  const width = (W - PAD.left - PAD.right) / Math.max(points.length, 1);
  const height = H - PAD.top - PAD.bottom;
  const every = Math.ceil(points.length / 14);
  return html`<figure class="panel">
    <figcaption>${title}</figcaption>
    <svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label=${title}>
      <line x1=${PAD.left} y1=${H - PAD.bottom} x2=${W - PAD.right} y2=${H - PAD.bottom} stroke="#98a2b3" />
      <text x=${PAD.left - 6} y=${PAD.top + 10} text-anchor="end">${points.length ? maxText(points) : ""}</text>
      ${points.map((p, i) => {
        const h = (p.value / max) * height;
        const x = PAD.left + i * width;
        return html`<g>
          <rect class=${alt ? "bar alt" : "bar"} x=${x + 2} y=${H - PAD.bottom - h} width=${Math.max(1, width - 4)} height=${h}>
            <title>${p.label}: ${p.text ?? p.value}</title>
          </rect>
          ${i % every === 0 && html`<text x=${x + width / 2} y=${H - PAD.bottom + 14} text-anchor="middle">${p.label}</text>`}
        </g>`;
      })}
    </svg>
  </figure>`;
}

function maxText(points) {
  const top = points.reduce((a, b) => (b.value > a.value ? b : a), points[0]);
  return top.text ?? String(top.value);
}

/** Horizontal bars, for ranked lists with long (e.g. Chinese) names. */
export function RankChart({ title, points }) {
  const max = Math.max(1, ...points.map((p) => p.value));
  const rowH = 22;
  const height = points.length * rowH + 8;
  const labelW = 200;
  return html`<figure class="panel">
    <figcaption>${title}</figcaption>
    <svg class="chart" viewBox="0 0 ${W} ${height}" role="img" aria-label=${title}>
      ${points.map((p, i) => {
        const w = (p.value / max) * (W - labelW - 90);
        const y = 4 + i * rowH;
        return html`<g>
          <text x=${labelW - 6} y=${y + 14} text-anchor="end">${clip(p.label, 18)}</text>
          <rect class="bar" x=${labelW} y=${y + 3} width=${Math.max(1, w)} height=${rowH - 8}><title>${p.label}: ${p.text ?? p.value}</title></rect>
          <text x=${labelW + w + 6} y=${y + 14}>${p.text ?? p.value}</text>
        </g>`;
      })}
    </svg>
  </figure>`;
}

function clip(text, n) {
  const s = String(text ?? "");
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}
