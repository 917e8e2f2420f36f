// Reviews: a product's rating and published reviews, and the page where a buyer writes or
// edits the review of a delivered line. Review text is always rendered as text (never markup,
// never links).
import { html, useEffect, useRef, useState } from "../../common/html.js";
import { formatDate, localized } from "../../common/i18n.js";
import { formatMoney } from "../../common/money.js";
import { Problem, Stars, uploadPhoto, useLoad } from "./shared.js";

// The server's limits (chalicelib/domain/reviews.py), checked here first so people hear at once.
export const LIMITS = { title: 100, bodyMin: 10, bodyMax: 2000, photos: 6, photoBytes: 5 * 1024 * 1024 };
const EDIT_DAYS = 30;
const PAGE_SIZE = 10;
const SORTS = ["recent", "helpful", "rating_high", "rating_low"];
const PHOTO_TYPES = ["image/jpeg", "image/png", "image/webp"];
// Control characters other than tab and newline are refused by the server.
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;
// How many pages of a product's reviews the write page looks through for the buyer's own.
const OWN_REVIEW_PAGES = 3;

/** Characters as the server counts them (code points, not UTF-16 units). */
const chars = (text) => [...text].length;

export function reviewPath(orderId, sku) {
  return `/orders/${encodeURIComponent(orderId)}/review?sku=${encodeURIComponent(sku)}`;
}

/** The signed-in shopper's id as the API knows it (the token's subject). */
function callerId(user) {
  return user ? user.sub || user.id : null;
}

// --- the product page ------------------------------------------------------------------------

export function RatingSummary({ rating, t, onPick, picked }) {
  const count = rating?.count || 0;
  if (!count) return html`<p class="muted" data-testid="rating-summary">${t("reviews.none")}</p>`;
  const histogram = rating.histogram || {};
  return html`<div class="rating-summary" data-testid="rating-summary">
    <div class="rating-big">
      <span class="rating-average" data-testid="rating-average">${rating.average.toFixed(1)}</span>
      <${Stars} value=${rating.average} t=${t} />
      <span class="muted" data-testid="rating-count">${t("rating.count", { n: count })}</span>
    </div>
    <ul class="histogram" aria-label=${t("rating.histogram")}>
      ${[5, 4, 3, 2, 1].map((stars) => {
        const n = histogram[String(stars)] || 0;
        const share = Math.round((n / count) * 100);
        return html`<li key=${stars}>
          <button class="link bar-row" aria-pressed=${picked === stars} disabled=${!n}
            onClick=${() => onPick(picked === stars ? null : stars)}
            aria-label=${t("rating.row", { stars, n })}>
            <span class="bar-label">${t("rating.starsShort", { n: stars })}</span>
            <span class="hbar"><span style=${`width:${share}%`}></span></span>
            <span class="bar-count">${n}</span>
          </button>
        </li>`;
      })}
    </ul>
  </div>`;
}

/** The product's reviews: sort, filter by stars, a page at a time, helpful votes. */
export function ProductReviews({ api, t, lang, user, auth, href, sku, rating }) {
  const [sort, setSort] = useState("recent");
  const [stars, setStars] = useState(null);
  const [items, setItems] = useState([]);
  const [cursor, setCursor] = useState(null);
  const [state, setState] = useState({ loading: true, error: null });
  // Only the latest request's answer is shown (sort or filter may change while one is out).
  const latest = useRef(0);

  async function load(from) {
    const seq = ++latest.current;
    setState({ loading: true, error: null });
    try {
      const page = await api.get(`/products/${encodeURIComponent(sku)}/reviews`, {
        auth: false,
        query: { sort, rating: stars ?? undefined, limit: PAGE_SIZE, cursor: from ?? undefined },
      });
      if (seq !== latest.current) return;
      setItems((seen) => (from ? [...seen, ...page.items] : page.items));
      setCursor(page.next_cursor);
      setState({ loading: false, error: null });
    } catch (error) {
      if (seq === latest.current) setState({ loading: false, error });
    }
  }
  useEffect(() => {
    load(null);
  }, [sku, sort, stars, rating?.count]);

  return html`<section class="reviews" aria-labelledby="reviews-title" data-testid="reviews">
    <h2 id="reviews-title">${t("reviews.title")}</h2>
    <${RatingSummary} rating=${rating} t=${t} picked=${stars} onPick=${setStars} />
    ${(rating?.count || 0) > 0 &&
    html`<div class="row review-controls">
      <label for="review-sort" style="margin:0">${t("reviews.sort")}</label>
      <select id="review-sort" value=${sort} onChange=${(e) => setSort(e.target.value)}>
        ${SORTS.map((s) => html`<option key=${s} value=${s}>${t(`reviews.sort.${s}`)}</option>`)}
      </select>
      <label for="review-stars" style="margin:0">${t("reviews.filter")}</label>
      <select id="review-stars" value=${stars ?? ""} onChange=${(e) => setStars(e.target.value ? Number(e.target.value) : null)}>
        <option value="">${t("reviews.filter.all")}</option>
        ${[5, 4, 3, 2, 1].map((n) => html`<option key=${n} value=${n}>${t("rating.starsShort", { n })}</option>`)}
      </select>
    </div>`}
    <${Problem} error=${state.error} t=${t} />
    <ol class="review-list" aria-live="polite">
      ${items.map((r) => html`<${ReviewItem} key=${r.review_id} review=${r} api=${api} t=${t} lang=${lang} user=${user} auth=${auth} href=${href} />`)}
    </ol>
    ${!state.loading && !state.error && items.length === 0 && (rating?.count || 0) > 0 && html`<p class="muted">${t("reviews.noneMatch")}</p>`}
    ${state.loading && html`<p>${t("loading")}</p>`}
    ${cursor && !state.loading && html`<p><button class="secondary" onClick=${() => load(cursor)}>${t("reviews.more")}</button></p>`}
  </section>`;
}

const VOTED_KEY = "orderdesk.helpful";

function votedReviews(userId) {
  try {
    return JSON.parse(localStorage.getItem(`${VOTED_KEY}.${userId}`) || "[]");
  } catch {
    return [];
  }
}

function rememberVote(userId, reviewId) {
  const seen = new Set(votedReviews(userId));
  seen.add(reviewId);
  localStorage.setItem(`${VOTED_KEY}.${userId}`, JSON.stringify([...seen].slice(-500)));
}

function ReviewItem({ review, api, t, lang, user, href }) {
  const me = callerId(user);
  const own = me && review.customer_id === me;
  const [helpful, setHelpful] = useState(review.helpful);
  const [voted, setVoted] = useState(() => Boolean(me) && votedReviews(me).includes(review.review_id));
  const [voteError, setVoteError] = useState(null);

  async function vote() {
    setVoteError(null);
    try {
      const answer = await api.post(`/reviews/${encodeURIComponent(review.review_id)}/helpful`, {});
      setHelpful(answer.helpful);
      setVoted(true);
      rememberVote(me, review.review_id);
    } catch (error) {
      setVoteError(error.code === "own_review" ? t("reviews.ownVote") : t("error.generic", { message: error.message }));
    }
  }

  return html`<li class="card review" data-testid="review">
    <div class="row">
      <${Stars} value=${review.rating} t=${t} />
      ${review.title && html`<strong class="review-title">${review.title}</strong>`}
    </div>
    <div class="muted small">
      ${t("reviews.verified")} · ${formatDate(review.created_at, lang)}
    </div>
    <p class="review-body">${review.body}</p>
    ${(review.photo_urls || []).length > 0 &&
    html`<ul class="review-photos">
      ${review.photo_urls.map(
        (p, i) => html`<li key=${p.upload_id}><img src=${p.url} alt=${t("reviews.photoN", { n: i + 1 })} loading="lazy" referrerpolicy="no-referrer" /></li>`,
      )}
    </ul>`}
    ${!review.photo_urls && review.photos.length > 0 && html`<p class="muted small">${t("reviews.photoCount", { n: review.photos.length })}</p>`}
    ${review.reply &&
    html`<div class="review-reply" data-testid="review-reply">
      <div class="small"><strong>${t("reviews.reply")}</strong> <span class="muted">${formatDate(review.reply.updated_at, lang)}</span></div>
      <p class="review-body">${review.reply.body}</p>
    </div>`}
    <div class="row small">
      ${own
        ? html`<span class="muted">${t("reviews.yours")}</span>
            <a href=${href(reviewPath(review.order_id, review.sku))}>${t("reviews.editYours")}</a>`
        : user
          ? html`<button class="secondary small" onClick=${vote} disabled=${voted} aria-pressed=${voted}>
              ${voted ? t("reviews.voted", { n: helpful }) : t("reviews.helpful", { n: helpful })}
            </button>`
          : helpful > 0 && html`<span class="muted">${t("reviews.helpfulCount", { n: helpful })}</span>`}
      ${voteError && html`<span class="error" role="alert">${voteError}</span>`}
    </div>
  </li>`;
}

// --- writing or editing a review -------------------------------------------------------------

function deliveredSkus(order) {
  const skus = new Set();
  for (const shipment of order.shipments || []) {
    if (shipment.status === "delivered") for (const line of shipment.lines) skus.add(line.sku);
  }
  return skus;
}

/** The buyer's own review of this order's line, if it is among the product's recent ones. */
async function findOwnReview(api, sku, orderId, customerId) {
  let cursor;
  for (let page = 0; page < OWN_REVIEW_PAGES; page++) {
    const answer = await api.get(`/products/${encodeURIComponent(sku)}/reviews`, {
      auth: false,
      query: { sort: "recent", limit: 100, cursor },
    });
    const found = answer.items.find((r) => r.order_id === orderId && r.customer_id === customerId);
    if (found || !answer.next_cursor) return found || null;
    cursor = answer.next_cursor;
  }
  return null;
}

/** Problems with the form as the server would see them: {field: message}. */
export function checkReview({ rating, title, body, photos }, t) {
  const problems = {};
  if (!(rating >= 1 && rating <= 5)) problems.rating = t("write.needRating");
  const cleanTitle = title.trim();
  if (chars(cleanTitle) > LIMITS.title) problems.title = t("write.titleTooLong", { n: LIMITS.title });
  else if (CONTROL.test(cleanTitle)) problems.title = t("write.control");
  const cleanBody = body.trim();
  if (chars(cleanBody) < LIMITS.bodyMin) problems.body = t("write.bodyTooShort", { n: LIMITS.bodyMin });
  else if (chars(cleanBody) > LIMITS.bodyMax) problems.body = t("write.bodyTooLong", { n: LIMITS.bodyMax });
  else if (CONTROL.test(cleanBody)) problems.body = t("write.control");
  if (photos.some((p) => p.state === "uploading")) problems.photos = t("write.photosUploading");
  return problems;
}

/** What the server's refusal means to the shopper, in their language. */
function refusalText(error, t) {
  const known = {
    not_a_verified_purchase: "write.error.notVerified",
    already_reviewed: "write.error.already",
    rate_limited: "write.error.rateLimited",
    edit_window_closed: "write.error.windowClosed",
    unknown_upload: "write.error.unknownUpload",
    busy: "write.error.busy",
  };
  if (known[error.code]) return t(known[error.code]);
  if (error.status === 404) return t("write.error.notFound");
  return t("error.generic", { message: error.message });
}

export function ReviewPage(ctx) {
  const { api, auth, user, t, lang, params, query, href } = ctx;
  const orderId = params.orderId;
  const sku = query.get("sku");
  const data = useLoad(async () => {
    if (!user) return null;
    const order = await api.get(`/orders/${encodeURIComponent(orderId)}`);
    const skus = sku ? [sku] : order.lines.map((l) => l.sku);
    const products = await Promise.all(
      skus.map((s) => api.get(`/products/${encodeURIComponent(s)}`, { auth: false }).catch(() => null)),
    );
    const existing = sku && deliveredSkus(order).has(sku) ? await findOwnReview(api, sku, orderId, order.customer_id).catch(() => null) : null;
    return { order, products: Object.fromEntries(skus.map((s, i) => [s, products[i]])), existing };
  }, [orderId, sku, user?.id]);

  const heading = html`<h1>${t("write.title")}</h1>`;
  if (!user) {
    return html`${heading}<p>${t("write.signIn")}</p>
      <p><button onClick=${() => auth.signIn(undefined, lang)}>${t("nav.signIn")}</button></p>`;
  }
  if (data.error) return html`${heading}<${Problem} error=${data.error} t=${t} />`;
  if (!data.data) return html`${heading}<p>${t("loading")}</p>`;
  const { order, products, existing } = data.data;
  const delivered = deliveredSkus(order);
  const orderLink = html`<p><a href=${href(`/orders/${encodeURIComponent(orderId)}`)}>${t("write.backToOrder", { id: orderId })}</a></p>`;

  if (!sku) {
    // From a message about the whole parcel: pick the line to review.
    return html`${heading}
      <ul class="choices">
        ${order.lines.map(
          (l) => html`<li key=${l.sku} class="card row">
            <span>${localized(products[l.sku]?.name, lang) || l.sku}</span>
            ${delivered.has(l.sku)
              ? html`<a class="button secondary" href=${href(reviewPath(orderId, l.sku))}>${t("write.link")}<span class="visually-hidden">${t("write.linkFor", { name: localized(products[l.sku]?.name, lang) || l.sku })}</span></a>`
              : html`<span class="muted">${t("write.notDeliveredShort")}</span>`}
          </li>`,
        )}
      </ul>
      ${orderLink}`;
  }
  const line = order.lines.find((l) => l.sku === sku);
  if (!line) return html`${heading}<p class="error" role="alert">${t("write.notInOrder")}</p>${orderLink}`;
  const product = products[sku];
  return html`${heading}
    <div class="card review-line" data-testid="review-line">
      <a href=${href(`/products/${encodeURIComponent(sku)}`)}>${localized(product?.name, lang) || sku}</a>
      <span class="muted"> × ${line.quantity} · ${formatMoney(line.line_total)} · ${t("order.title", { id: orderId })}</span>
    </div>
    ${delivered.has(sku)
      ? html`<${ReviewForm} key=${existing?.review_id || "new"} ...${ctx} order=${order} sku=${sku} existing=${existing} />`
      : html`<p class="error" role="alert">${t("write.notDelivered")}</p>`}
    ${orderLink}`;
}

function ReviewForm({ api, t, lang, href, order, sku, existing }) {
  const [review, setReview] = useState(existing);
  const [rating, setRating] = useState(existing?.rating || 0);
  const [title, setTitle] = useState(existing?.title || "");
  const [body, setBody] = useState(existing?.body || "");
  const [photos, setPhotos] = useState(() => {
    const links = Object.fromEntries((existing?.photo_urls || []).map((l) => [l.upload_id, l.url]));
    return (existing?.photos || []).map((id) => ({ id, state: "done", preview: links[id] }));
  });
  const [problems, setProblems] = useState({});
  const [refusal, setRefusal] = useState(null);
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState(false);
  const editUntil = review ? new Date(new Date(review.created_at).getTime() + EDIT_DAYS * 86400000) : null;
  const closed = editUntil && editUntil < new Date();

  async function addPhotos(event) {
    const files = [...event.target.files];
    event.target.value = "";
    const room = LIMITS.photos - photos.length;
    const wanted = files.slice(0, Math.max(room, 0));
    const notes = [];
    if (files.length > wanted.length) notes.push(t("write.photosMax", { n: LIMITS.photos }));
    for (const file of wanted) {
      const key = `${file.name}-${file.size}-${Math.random()}`;
      if (!PHOTO_TYPES.includes(file.type)) {
        notes.push(t("write.photoType", { name: file.name }));
        continue;
      }
      if (file.size > LIMITS.photoBytes) {
        notes.push(t("write.photoSize", { name: file.name }));
        continue;
      }
      const preview = URL.createObjectURL(file);
      setPhotos((all) => [...all, { key, name: file.name, preview, state: "uploading" }]);
      uploadPhoto(api, file).then(
        (id) => setPhotos((all) => all.map((p) => (p.key === key ? { ...p, id, state: "done" } : p))),
        () => setPhotos((all) => all.map((p) => (p.key === key ? { ...p, state: "failed" } : p))),
      );
    }
    setProblems((p) => ({ ...p, photos: notes.join(" ") || undefined }));
  }

  // Changing a field takes back what was said about it.
  const change = (field, set) => (value) => {
    set(value);
    setProblems((p) => ({ ...p, [field]: undefined }));
  };
  const changeRating = change("rating", setRating);
  const changeTitle = change("title", setTitle);
  const changeBody = change("body", setBody);

  function removePhoto(photo) {
    if (photo.preview?.startsWith("blob:")) URL.revokeObjectURL(photo.preview);
    setPhotos((all) => all.filter((p) => p !== photo));
  }

  async function submit(event) {
    event.preventDefault();
    setRefusal(null);
    setSaved(false);
    const found = checkReview({ rating, title, body, photos }, t);
    setProblems(found);
    if (Object.keys(found).length) {
      const first = event.target.querySelector(`[data-field="${Object.keys(found)[0]}"]`);
      if (first) first.focus();
      return;
    }
    const payload = {
      order_id: order.order_id,
      rating,
      title: title.trim() || null,
      body: body.trim(),
      photos: photos.filter((p) => p.state === "done").map((p) => p.id),
    };
    setSaving(true);
    try {
      const answer = review
        ? await api.put(`/reviews/${encodeURIComponent(review.review_id)}`, payload)
        : await api.post(`/products/${encodeURIComponent(sku)}/reviews`, payload);
      setReview(answer);
      setSaved(true);
    } catch (error) {
      if (error.code === "already_reviewed" && error.details?.review_id) {
        // Written before (perhaps in another tab): what is typed here can replace it.
        setReview({ review_id: error.details.review_id, created_at: null });
      }
      setRefusal(refusalText(error, t));
    } finally {
      setSaving(false);
    }
  }

  const titleLeft = LIMITS.title - chars(title.trim());
  const bodyCount = chars(body.trim());
  const fieldError = (name) => problems[name] && html`<p class="error" id=${`${name}-error`}>${problems[name]}</p>`;
  return html`<form class="review-form" onSubmit=${submit} noValidate>
    ${review && !saved && html`<p class="muted" data-testid="edit-note">
      ${closed ? t("write.editClosed") : editUntil ? t("write.editing", { date: formatDate(editUntil.toISOString(), lang) }) : t("write.editingNow")}
    </p>`}
    <fieldset aria-describedby=${problems.rating ? "rating-error" : undefined}>
      <legend>${t("write.rating")}</legend>
      <div class="star-picker" role="radiogroup" aria-label=${t("write.rating")}>
        ${[1, 2, 3, 4, 5].map(
          (n) => html`<label key=${n} class=${n <= rating ? "on" : ""}>
            <input type="radio" name="rating" value=${n} checked=${rating === n} data-field=${n === 1 ? "rating" : undefined}
              onChange=${() => changeRating(n)} />
            <span aria-hidden="true">★</span><span class="visually-hidden">${t("rating.starsShort", { n })}</span>
          </label>`,
        )}
        <span class="muted">${rating ? t(`write.ratingWord.${rating}`) : ""}</span>
      </div>
      ${fieldError("rating")}
    </fieldset>
    <div class="field">
      <label for="review-title">${t("write.titleLabel")}</label>
      <input id="review-title" data-field="title" value=${title} onInput=${(e) => changeTitle(e.target.value)}
        aria-invalid=${Boolean(problems.title)} aria-describedby="title-hint" style="width:100%" />
      <div id="title-hint" class=${titleLeft < 0 ? "error small" : "muted small"}>${t("write.titleLeft", { n: titleLeft })}</div>
      ${fieldError("title")}
    </div>
    <div class="field">
      <label for="review-body">${t("write.bodyLabel")}</label>
      <textarea id="review-body" data-field="body" rows="6" value=${body} onInput=${(e) => changeBody(e.target.value)}
        aria-invalid=${Boolean(problems.body)} aria-describedby="body-hint" style="width:100%"></textarea>
      <div id="body-hint" class=${bodyCount > LIMITS.bodyMax ? "error small" : "muted small"}>
        ${t("write.bodyCount", { n: bodyCount, min: LIMITS.bodyMin, max: LIMITS.bodyMax })}
      </div>
      ${fieldError("body")}
    </div>
    <div class="field">
      <label for="review-photos">${t("write.photos", { n: LIMITS.photos })}</label>
      <input id="review-photos" data-field="photos" type="file" accept=${PHOTO_TYPES.join(",")} multiple
        disabled=${photos.length >= LIMITS.photos} onChange=${addPhotos} />
      <ul class="review-photos">
        ${photos.map(
          (p, i) => html`<li key=${p.key || p.id}>
            ${p.preview ? html`<img src=${p.preview} alt=${t("reviews.photoN", { n: i + 1 })} />` : html`<span class="photo-stub">${t("reviews.photoN", { n: i + 1 })}</span>`}
            <span class="small ${p.state === "failed" ? "error" : "muted"}">${t(`write.photo.${p.state}`)}</span>
            <button type="button" class="link small" onClick=${() => removePhoto(p)}>${t("write.photoRemove", { n: i + 1 })}</button>
          </li>`,
        )}
      </ul>
      ${fieldError("photos")}
    </div>
    ${refusal && html`<p class="error" role="alert" data-testid="review-refusal">${refusal}</p>`}
    ${saved &&
    html`<p role="status" class="ok" data-testid="review-saved">${t("write.saved")}
      <a href=${href(`/products/${encodeURIComponent(sku)}`)}>${t("write.seeProduct")}</a></p>`}
    <button type="submit" disabled=${saving || closed}>${saving ? t("write.saving") : review ? t("write.update") : t("write.submit")}</button>
  </form>`;
}
