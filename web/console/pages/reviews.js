// ops: the review moderation queue (hide with a reason, publish again); support and ops: the
// merchant's reply. Support, who cannot read the queue, look a product's reviews up by SKU.
import { html, useState } from "../../common/html.js";
import { formatDate } from "../../common/i18n.js";
import { ErrorText, Loading, OPS, Pager, formValues, inGroup, useAction, useLoad, usePager } from "../ui.js";

const SKU = /^[A-Za-z0-9._-]{1,64}$/;

function stars(n) {
  return "★".repeat(n) + "☆".repeat(5 - n);
}

export function ReviewsPage({ api, t, lang, query, go, user }) {
  const moderator = inGroup(user, OPS);
  const sku = query.get("sku") || "";
  const [status, setStatus] = useState("published");
  const pager = usePager([status, sku]);
  const list = useLoad(() => {
    const q = { cursor: pager.cursor, limit: 20 };
    if (moderator) return api.get("/reviews", { query: { ...q, status, sku } });
    return sku ? api.get(`/products/${encodeURIComponent(sku)}/reviews`, { query: q }) : null;
  }, [status, sku, pager.cursor]);
  const product = useLoad(() => (sku ? api.get(`/products/${encodeURIComponent(sku)}`, { auth: false }) : null), [sku, list.data]);
  const [problem, setProblem] = useState(null);
  function search(event) {
    event.preventDefault();
    const text = (formValues(event.currentTarget).sku || "").trim();
    if (text && !SKU.test(text)) return setProblem(t("search.invalid"));
    setProblem(null);
    go(text ? "/reviews?sku=" + encodeURIComponent(text) : "/reviews");
  }
  const items = list.data?.items || [];
  return html`<h1>${moderator ? t("reviews.title") : t("reviews.titleSupport")}</h1>
    <form class="row" role="search" onSubmit=${search}>
      <label>SKU<input name="sku" value=${sku} required=${!moderator} /></label>
      <button>${t("search.go")}</button>
      ${sku && moderator && html`<button type="button" class="secondary" onClick=${() => go("/reviews")}>${t("clear")}</button>`}
      ${problem && html`<p class="error" role="alert">${problem}</p>`}
    </form>
    ${moderator && html`<div class="row" role="group" aria-label=${t("order.status")}>
      ${["published", "hidden"].map((s) => html`<button class=${s === status ? "" : "secondary"} aria-pressed=${s === status} onClick=${() => setStatus(s)}>${t("review." + s)}</button>`)}
      <button class="secondary" onClick=${list.reload}>${t("refresh")}</button>
    </div>`}
    ${product.data?.rating && html`<${Rating} t=${t} lang=${lang} product=${product.data} />`}
    <${ErrorText} error=${list.error || product.error} t=${t} />
    ${!moderator && !sku ? html`<p class="muted">${t("reviews.enterSku")}</p>` : list.loading && !list.data ? html`<${Loading} t=${t} />` : html`
      ${items.map((r) => html`<${ReviewCard} key=${r.review_id + r.status + r.updated_at + (r.reply?.updated_at || "")} api=${api} t=${t} lang=${lang} review=${r} moderator=${moderator} done=${list.reload} />`)}
      ${list.data && items.length === 0 && html`<p>${t("empty")}</p>`}
      <${Pager} pager=${pager} nextCursor=${list.data?.next_cursor} t=${t} />`}`;
}

function Rating({ t, lang, product }) {
  const r = product.rating;
  const name = typeof product.name === "object" ? product.name[lang] || product.name.en : product.name;
  return html`<dl class="facts panel" aria-label=${t("reviews.rating")}>
    <dt>${t("reviews.product")}</dt><dd>${name} (${product.sku})</dd>
    <dt>${t("reviews.average")}</dt><dd data-field="average">${r.average ?? "—"}</dd>
    <dt>${t("reviews.count")}</dt><dd data-field="count">${r.count}</dd>
    <dt>${t("reviews.histogram")}</dt><dd>${["5", "4", "3", "2", "1"].map((k) => `${k}★ ${r.histogram[k]}`).join(" · ")}</dd>
  </dl>`;
}

function ReviewCard({ api, t, lang, review: r, moderator, done }) {
  const action = useAction(t);
  const id = encodeURIComponent(r.review_id);
  async function hide(event) {
    event.preventDefault();
    const reason = (formValues(event.currentTarget).reason || "").trim();
    if (!reason) return;
    if (await action.run(() => api.post(`/reviews/${id}/hide`, { reason }), t("review.hiddenDone"))) done();
  }
  async function publish() {
    if (await action.run(() => api.post(`/reviews/${id}/publish`), t("review.publishedDone"))) done();
  }
  async function reply(event) {
    event.preventDefault();
    const body = (formValues(event.currentTarget).body || "").trim();
    if (!body) return;
    if (await action.run(() => api.post(`/reviews/${id}/reply`, { body }), t("review.replied"))) done();
  }
  const titleId = "r-" + r.review_id;
  // The reply box is uncontrolled (defaultValue): a re-render, such as the product's rating
  // arriving, must not wipe what was typed. The card's key changes with the reply.
  return html`<article class="panel review" data-review=${r.review_id} aria-labelledby=${titleId}>
    <h2 id=${titleId}><span aria-label=${t("review.stars", { n: r.rating })}>${stars(r.rating)}</span> ${r.title || ""}</h2>
    <p class="muted">SKU ${r.sku} · ${t("order.id")} ${r.order_id} · ${t("order.customer")} ${r.customer_id} · ${formatDate(r.created_at, lang, true)} · ${t("review.helpful", { n: r.helpful })}
      ${r.status === "hidden" && html` · <span class="badge late">${t("review.hidden")}</span>`}</p>
    <p class="text">${r.body}</p>
    ${r.photos.length > 0 && html`<p class="muted">${t("conv.photos", { n: r.photos.length })}</p>`}
    ${r.hidden_reason && html`<p><strong>${t("review.reason")}:</strong> ${r.hidden_reason}</p>`}
    ${r.reply && html`<blockquote class="reply"><p class="meta"><strong>${t("review.merchantReply")}</strong> <span class="muted">${formatDate(r.reply.updated_at, lang, true)}</span></p><p class="text">${r.reply.body}</p></blockquote>`}
    <div class="cards">
      ${moderator && r.status === "published" && html`<form onSubmit=${hide}>
        <label>${t("review.reason")}<input name="reason" required maxlength="500" /></label>
        <p><button class="danger" disabled=${action.busy}>${t("review.hide")}</button></p>
      </form>`}
      ${moderator && r.status === "hidden" && html`<p><button disabled=${action.busy} onClick=${publish}>${t("review.publish")}</button></p>`}
      <form onSubmit=${reply}>
        <label>${r.reply ? t("review.editReply") : t("review.reply")}<textarea name="body" required maxlength="2000" defaultValue=${r.reply?.body || ""}></textarea></label>
        <p><button class="secondary" disabled=${action.busy}>${t("review.sendReply")}</button></p>
      </form>
    </div>
    ${action.status}
  </article>`;
}
