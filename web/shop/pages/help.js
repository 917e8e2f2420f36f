// The help panel, reachable from every page: a signed-in shopper asks a question (optionally
// about one order, with photos), reads the assistant's immediate answer, follows their
// conversations live over the support WebSocket (polling ?after= while there is none) and
// replies. Every body is shown as text, never as HTML.
import { html, useEffect, useRef, useState } from "../../common/html.js";
import { formatDate } from "../../common/i18n.js";
import { uploadPhoto } from "./shared.js";

const POLL_MS = 4000;
const RECONNECT_MS = 5000;
const PHOTO_TYPES = ["image/jpeg", "image/png", "image/webp"];
const MAX_PHOTO_BYTES = 5 * 1024 * 1024;
const MAX_PHOTOS = 6;
const MAX_BODY = 2000;
const ERRORS = {
  too_many_open_conversations: "help.error.tooMany",
  rate_limited: "help.error.rateLimited",
  conversation_closed: "help.error.closed",
  unknown_upload: "help.error.photo",
  already_rated: "help.error.rated",
};
// Photos this tab uploaded, shown from the file itself (customers get upload ids, not links).
const previews = new Map();

export function HelpPanel({ api, auth, user, t, lang, request, onClose }) {
  const [view, setView] = useState(() => firstView(request));
  const listeners = useRef(new Set());
  const connected = useLiveSupport(api, Boolean(user), (event) => {
    for (const listener of listeners.current) listener(event);
  });
  const heading = useRef(null);
  // Each screen of the panel starts at its heading (and Escape closes the panel from there).
  useEffect(() => heading.current && heading.current.focus(), [view.name, view.id]);
  useEffect(() => {
    if (request.orderId) setView(firstView(request));
  }, [request]);
  const live = {
    connected,
    subscribe(listener) {
      listeners.current.add(listener);
      return () => listeners.current.delete(listener);
    },
  };
  const props = { api, t, lang, live, show: setView };
  let body;
  if (!user) {
    body = html`<p>${t("help.signInFirst")}</p>
      <p><button onClick=${() => auth.signIn(undefined, lang)}>${t("nav.signIn")}</button></p>`;
  } else if (view.name === "new") {
    body = html`<${NewConversation} ...${props} orderId=${view.orderId} />`;
  } else if (view.name === "thread") {
    body = html`<${Thread} key=${view.id} ...${props} id=${view.id} initial=${view.started} />`;
  } else {
    body = html`<${Conversations} ...${props} />`;
  }
  return html`<aside class="help-panel" aria-labelledby="help-title" data-testid="help-panel"
      onKeyDown=${(e) => e.key === "Escape" && onClose()}>
    <div class="help-head">
      <h2 id="help-title" tabindex="-1" ref=${heading}>${t("help.title")}</h2>
      <button class="link" onClick=${onClose}>${t("help.close")}</button>
    </div>
    <p class="muted small">${t("help.intro")}</p>
    ${body}
  </aside>`;
}

function firstView(request) {
  return request.orderId ? { name: "new", orderId: request.orderId } : { name: "list" };
}

/** The support WebSocket: a fresh single-use ticket per connection, reconnecting after a
 * drop; {connected} says whether pushes arrive (otherwise the views poll). */
function useLiveSupport(api, enabled, onEvent) {
  const [connected, setConnected] = useState(false);
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => {
    if (!enabled || typeof WebSocket === "undefined") return;
    let socket = null;
    let timer = null;
    let stopped = false;
    async function connect() {
      try {
        const ticket = await api.post("/support/socket-tickets", {});
        if (stopped || !ticket.url) return;
        const url = new URL(ticket.url);
        url.searchParams.set("ticket", ticket.ticket);
        socket = new WebSocket(url);
        socket.onopen = () => setConnected(true);
        socket.onmessage = (message) => {
          let event = null;
          try {
            event = JSON.parse(message.data);
          } catch {
            return;
          }
          handler.current(event);
        };
        socket.onclose = () => {
          socket = null;
          setConnected(false);
          if (!stopped) timer = setTimeout(connect, RECONNECT_MS);
        };
      } catch {
        if (!stopped) timer = setTimeout(connect, RECONNECT_MS * 3);
      }
    }
    connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      if (socket) socket.close();
    };
  }, [enabled]);
  return connected;
}

function Conversations({ api, t, lang, live, show }) {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api.get("/support/conversations", { query: { limit: 20 } }).then((page) => setItems(page.items), setError);
  }, []);
  useEffect(
    () =>
      live.subscribe((event) => {
        if (event.type !== "status") return;
        setItems((all) => all && all.map((c) => (c.conversation_id === event.conversation_id ? { ...c, status: event.status } : c)));
      }),
    [],
  );
  return html`
    <p><button onClick=${() => show({ name: "new" })}>${t("help.new")}</button></p>
    <${Failure} error=${error} t=${t} />
    ${items && items.length === 0 && html`<p class="muted">${t("help.none")}</p>`}
    ${items &&
    html`<ul class="help-list" aria-label=${t("help.mine")}>
      ${items.map(
        (c) => html`<li key=${c.conversation_id}>
          <button class="link" onClick=${() => show({ name: "thread", id: c.conversation_id })}>${c.subject}</button>
          <span class="status-pill">${t(`help.status.${c.status}`)}</span>
          <span class="muted small">${formatDate(c.updated_at, lang, true)}</span>
        </li>`,
      )}
    </ul>`}
  `;
}

function NewConversation({ api, t, lang, show, orderId }) {
  const [orders, setOrders] = useState([]);
  const [chosen, setChosen] = useState(orderId || "");
  const [subject, setSubject] = useState("");
  const [text, setText] = useState("");
  const [files, setFiles] = useState([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  useEffect(() => {
    api.get("/orders", { query: { limit: 20 } }).then((page) => setOrders(page.items), () => {});
  }, []);
  useEffect(() => setChosen(orderId || ""), [orderId]);
  const listed = orders.some((o) => o.order_id === chosen) || !chosen ? orders : [{ order_id: chosen }, ...orders];

  async function submit(e) {
    e.preventDefault();
    const message = text.trim();
    if (!message) return setError({ key: "help.error.empty" });
    setBusy(true);
    setError(null);
    try {
      const photos = await uploadAll(api, files);
      const started = await api.post("/support/conversations", {
        subject: subject.trim() || [...message].slice(0, 40).join(""),
        message,
        order_id: chosen || undefined,
        photos,
      });
      show({ name: "thread", id: started.conversation_id, started });
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  }

  return html`<form class="help-form" onSubmit=${submit}>
    <h3>${t("help.new")}</h3>
    <label for="help-order">${t("help.order")}</label>
    <select id="help-order" value=${chosen} onChange=${(e) => setChosen(e.currentTarget.value)}>
      <option value="">${t("help.noOrder")}</option>
      ${listed.map(
        (o) => html`<option key=${o.order_id} value=${o.order_id}>
          ${t("order.title", { id: o.order_id })}${o.status ? ` · ${t(`status.${o.status}`)}` : ""}
        </option>`,
      )}
    </select>
    <label for="help-subject">${t("help.subject")}</label>
    <input id="help-subject" maxlength="200" value=${subject} placeholder=${t("help.subjectHint")}
      onInput=${(e) => setSubject(e.currentTarget.value)} />
    <label for="help-message">${t("help.message")}</label>
    <textarea id="help-message" rows="3" maxlength=${MAX_BODY} required value=${text}
      placeholder=${t("help.messageHint")} onInput=${(e) => setText(e.currentTarget.value)}></textarea>
    <${PhotoPicker} t=${t} files=${files} setFiles=${setFiles} setError=${setError} id="help-photos" />
    <${Failure} error=${error} t=${t} />
    <div class="row">
      <button type="submit" disabled=${busy}>${busy ? t("help.sending") : t("help.send")}</button>
      <button type="button" class="secondary" onClick=${() => show({ name: "list" })}>${t("help.mine")}</button>
    </div>
  </form>`;
}

function Thread({ api, t, lang, live, show, id, initial }) {
  const [conversation, setConversation] = useState(() => (initial ? withoutMessages(initial) : null));
  const [messages, setMessages] = useState(() => (initial ? initial.messages : []));
  const [error, setError] = useState(null);
  const last = messages.length ? messages[messages.length - 1].message_id : null;
  const path = `/support/conversations/${encodeURIComponent(id)}`;
  const lastRef = useRef(null);
  lastRef.current = last;

  function take(found) {
    setConversation((c) => ({ ...c, ...withoutMessages(found) }));
    setMessages((all) => merge(all, found.messages || []));
  }
  async function catchUp() {
    try {
      take(await api.get(path, { query: { after: lastRef.current || undefined } }));
    } catch (failure) {
      setError(failure);
    }
  }
  useEffect(() => {
    catchUp();
  }, [id]);
  // Pushed messages and status changes for this conversation.
  useEffect(
    () =>
      live.subscribe((event) => {
        if (event.conversation_id !== id) return;
        if (event.type === "message" && event.message) setMessages((all) => merge(all, [event.message]));
        if (event.type === "status") {
          setConversation((c) => c && { ...c, status: event.status });
          catchUp(); // the rest of the conversation (its due time, rating) moves with its status
        }
      }),
    [id],
  );
  // No socket: ask for what is new every few seconds; a (re)connected socket catches up once.
  useEffect(() => {
    if (live.connected) {
      catchUp();
      return;
    }
    const timer = setInterval(catchUp, POLL_MS);
    return () => clearInterval(timer);
  }, [live.connected, id]);

  if (!conversation) return html`<${Failure} error=${error} t=${t} />${!error && html`<p>${t("loading")}</p>`}`;
  const closed = conversation.status === "closed";
  return html`<section class="help-thread" aria-labelledby="help-subject-heading">
    <p><button class="link" onClick=${() => show({ name: "list" })}>← ${t("help.mine")}</button></p>
    <h3 id="help-subject-heading">${conversation.subject}</h3>
    <p class="row small">
      <span class="status-pill" data-testid="help-status">${t(`help.status.${conversation.status}`)}</span>
      ${conversation.order_id && html`<span class="muted">${t("order.title", { id: conversation.order_id })}</span>`}
      <span class="muted">${live.connected ? t("help.live") : t("help.polling")}</span>
    </p>
    ${conversation.status === "open" &&
    conversation.first_response_due_at &&
    html`<p class="muted small" data-testid="help-due">${t("help.dueBy", { time: formatDate(conversation.first_response_due_at, lang, true) })}</p>`}
    <ol class="help-messages" aria-live="polite" data-testid="help-messages">
      ${messages.map((m) => html`<${MessageItem} key=${m.message_id} message=${m} t=${t} lang=${lang} />`)}
    </ol>
    <${Failure} error=${error} t=${t} />
    ${closed
      ? html`<p class="muted">${t("help.error.closed")}</p>
          <p><button onClick=${() => show({ name: "new", orderId: conversation.order_id })}>${t("help.new")}</button></p>`
      : html`<${Reply} api=${api} t=${t} path=${path} onPosted=${take} onError=${setError} />`}
    ${(conversation.status === "resolved" || closed) &&
    conversation.rating == null &&
    html`<${Rating} api=${api} t=${t} path=${path} onRated=${take} />`}
    ${conversation.rating != null && html`<p class="muted">${t("help.rated", { n: conversation.rating })}</p>`}
  </section>`;
}

function MessageItem({ message, t, lang }) {
  const links = message.photo_urls || [];
  const local = (message.photos || []).filter((id) => previews.has(id));
  const others = (message.photos || []).length - local.length - links.length;
  return html`<li class=${`help-message from-${message.author}`} data-author=${message.author}>
    <div class="muted small">${t(`help.author.${message.author}`)} · ${formatDate(message.created_at, lang, true)}</div>
    <p class="help-body">${message.body}</p>
    ${(local.length > 0 || links.length > 0) &&
    html`<div class="help-photos">
      ${local.map((id, i) => html`<img key=${id} src=${previews.get(id)} alt=${t("help.photoN", { n: i + 1 })} />`)}
      ${links.map((link, i) => html`<img key=${link.upload_id} src=${link.url} alt=${t("help.photoN", { n: i + 1 })} referrerpolicy="no-referrer" />`)}
    </div>`}
    ${others > 0 && html`<div class="muted small">${t("help.photos", { n: others })}</div>`}
  </li>`;
}

function Reply({ api, t, path, onPosted, onError }) {
  const [text, setText] = useState("");
  const [files, setFiles] = useState([]);
  const [busy, setBusy] = useState(false);
  async function submit(e) {
    e.preventDefault();
    const body = text.trim();
    if (!body) return;
    setBusy(true);
    onError(null);
    try {
      const photos = await uploadAll(api, files);
      const posted = await api.post(`${path}/messages`, { body, photos });
      onPosted({ status: posted.status, messages: [posted.message, ...posted.replies] });
      setText("");
      setFiles([]);
    } catch (failure) {
      onError(failure);
    }
    setBusy(false);
  }
  return html`<form class="help-form" onSubmit=${submit}>
    <label for="help-reply">${t("help.reply")}</label>
    <textarea id="help-reply" rows="2" maxlength=${MAX_BODY} value=${text} onInput=${(e) => setText(e.currentTarget.value)}></textarea>
    <${PhotoPicker} t=${t} files=${files} setFiles=${setFiles} setError=${onError} id="help-reply-photos" />
    <button type="submit" disabled=${busy || !text.trim()}>${busy ? t("help.sending") : t("help.send")}</button>
  </form>`;
}

function Rating({ api, t, path, onRated }) {
  const [score, setScore] = useState(5);
  const [error, setError] = useState(null);
  async function submit(e) {
    e.preventDefault();
    try {
      onRated(await api.post(`${path}/rating`, { score: Number(score) }));
    } catch (failure) {
      setError(failure);
    }
  }
  return html`<form class="help-form row" onSubmit=${submit}>
    <label for="help-score">${t("help.rate")}</label>
    <select id="help-score" value=${score} onChange=${(e) => setScore(e.currentTarget.value)}>
      ${[5, 4, 3, 2, 1].map((n) => html`<option key=${n} value=${n}>${"★".repeat(n)} ${n}</option>`)}
    </select>
    <button type="submit" class="secondary">${t("help.rateSend")}</button>
    <${Failure} error=${error} t=${t} />
  </form>`;
}

function PhotoPicker({ t, files, setFiles, setError, id }) {
  function pick(e) {
    const chosen = [...e.currentTarget.files];
    const fit = chosen.filter((f) => PHOTO_TYPES.includes(f.type) && f.size > 0 && f.size <= MAX_PHOTO_BYTES);
    if (fit.length !== chosen.length || fit.length > MAX_PHOTOS) setError({ key: "help.error.photoFile" });
    setFiles(fit.slice(0, MAX_PHOTOS));
  }
  return html`<label for=${id}>${t("help.photo")}</label>
    <input id=${id} type="file" accept=${PHOTO_TYPES.join(",")} multiple onChange=${pick} />
    ${files.length > 0 && html`<div class="muted small">${t("help.photos", { n: files.length })}</div>`}`;
}

function Failure({ error, t }) {
  if (!error) return null;
  const key = error.key || ERRORS[error.code];
  const text = key ? t(key) : t("error.generic", { message: error.message });
  return html`<p class="error" role="alert">${text}</p>`;
}

/** Upload each file through POST /uploads (a presigned S3 POST); their upload ids. */
async function uploadAll(api, files) {
  const ids = [];
  for (const file of files) {
    const id = await uploadPhoto(api, file).catch((error) => {
      throw Object.assign(error, { key: "help.error.photoUpload" });
    });
    previews.set(id, URL.createObjectURL(file));
    ids.push(id);
  }
  return ids;
}

function merge(all, more) {
  const byId = new Map(all.map((m) => [m.message_id, m]));
  for (const m of more) byId.set(m.message_id, m);
  return [...byId.values()].sort((a, b) => (a.message_id < b.message_id ? -1 : a.message_id > b.message_id ? 1 : 0));
}

function withoutMessages(found) {
  const { messages, ...rest } = found;
  return rest;
}
