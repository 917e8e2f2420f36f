// support and ops: the conversation queue (overdue first), one conversation with live
// updates, replies with canned texts, assign and resolve; ops keep the canned replies.
import { html, useEffect, useRef, useState } from "../../common/html.js";
import { formatDate } from "../../common/i18n.js";
import { ErrorText, Loading, OPS, Pager, SUPPORT, formValues, inGroup, useAction, useLoad, usePager } from "../ui.js";

const STATUSES = ["open", "waiting_on_customer", "resolved", "closed"];
const POLL_MS = 4000; // without a push (no socket, or not assigned to us), read ?after= this often
const QUEUE_REFRESH_MS = 30000;
const KEY = /^[a-z0-9][a-z0-9_-]{0,63}$/;

function path(id) {
  return `/support/conversations/${encodeURIComponent(id)}`;
}

function Due({ c, t, lang }) {
  if (!c.first_response_due_at) return html`<span class="muted">—</span>`;
  return html`<span class=${c.overdue ? "overdue" : ""}>${c.overdue ? html`<span class="badge late">${t("conv.overdue")}</span> ` : ""}${formatDate(c.first_response_due_at, lang, true)}</span>`;
}

function Status({ status, t }) {
  return html`<span class=${"badge conv-" + status}>${t("conv.status." + status)}</span>`;
}

export function QueuePage({ api, t, lang, href, user }) {
  const [status, setStatus] = useState("");
  const [who, setWho] = useState("");
  const [agent, setAgent] = useState("");
  const [overdue, setOverdue] = useState(false);
  const assignedTo = who === "me" ? user.id : who === "agent" ? agent.trim() : "";
  const pager = usePager([status, assignedTo, overdue]);
  const list = useLoad(
    () => api.get("/support/conversations", { query: { status, assigned_to: assignedTo, overdue: overdue ? "true" : "", cursor: pager.cursor, limit: 25 } }),
    [status, assignedTo, overdue, pager.cursor],
  );
  useEffect(() => {
    const timer = setInterval(list.reload, QUEUE_REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  const items = list.data?.items || [];
  return html`<h1>${t("conv.queue")}</h1>
    <div class="row" role="search" aria-label=${t("conv.filters")}>
      <label>${t("order.status")}<select value=${status} onChange=${(e) => setStatus(e.target.value)}>
        <option value="">${t("all")}</option>
        ${STATUSES.map((s) => html`<option value=${s}>${t("conv.status." + s)}</option>`)}
      </select></label>
      <label>${t("conv.assignedTo")}<select value=${who} onChange=${(e) => setWho(e.target.value)}>
        <option value="">${t("conv.anyone")}</option>
        <option value="me">${t("conv.me")}</option>
        <option value="agent">${t("conv.agent")}</option>
      </select></label>
      ${who === "agent" && html`<label>${t("conv.agentId")}<input value=${agent} pattern="[A-Za-z0-9._\\-]{1,64}" onChange=${(e) => setAgent(e.target.value)} /></label>`}
      <label class="check"><input type="checkbox" checked=${overdue} onChange=${(e) => setOverdue(e.target.checked)} /> ${t("conv.overdueOnly")}</label>
      <button class="secondary" onClick=${list.reload}>${t("refresh")}</button>
    </div>
    <${ErrorText} error=${list.error} t=${t} />
    ${list.loading && !list.data ? html`<${Loading} t=${t} />` : html`<table>
      <thead><tr><th scope="col">${t("conv.subject")}</th><th scope="col">${t("order.status")}</th><th scope="col">${t("order.customer")}</th>
        <th scope="col">${t("conv.assignedTo")}</th><th scope="col">${t("conv.intent")}</th><th scope="col">${t("order.id")}</th>
        <th scope="col">${t("conv.due")}</th><th scope="col">${t("conv.updated")}</th></tr></thead>
      <tbody>${items.map((c) => html`<tr data-conversation=${c.conversation_id} class=${c.overdue ? "late" : ""}>
        <td><a href=${href("/conversations/" + encodeURIComponent(c.conversation_id))}>${c.subject}</a></td>
        <td><${Status} status=${c.status} t=${t} /></td><td>${c.customer_id}</td>
        <td>${c.assigned_to === user.id ? t("conv.me") : c.assigned_to || html`<span class="muted">${t("conv.unassigned")}</span>`}</td>
        <td>${c.intent ? t("intent." + c.intent) : ""}</td><td>${c.order_id || ""}</td>
        <td><${Due} c=${c} t=${t} lang=${lang} /></td><td>${formatDate(c.updated_at, lang, true)}</td>
      </tr>`)}</tbody>
    </table>
    ${list.data && items.length === 0 && html`<p>${t("empty")}</p>`}
    <${Pager} pager=${pager} nextCursor=${list.data?.next_cursor} t=${t} />`}`;
}

/** Messages added to a list in order, each once (a push and a poll may bring the same one). */
function merged(list, more) {
  const seen = new Set(list.map((m) => m.message_id));
  const added = more.filter((m) => !seen.has(m.message_id));
  return added.length ? [...list, ...added] : list;
}

/** The conversation, kept current by the WebSocket and, without a push, by polling ?after=. */
function useLiveConversation(api, id, userId) {
  const [state, setState] = useState({ conversation: null, messages: [], error: null });
  const [socketOpen, setSocketOpen] = useState(false);
  const latest = useRef(state);
  latest.current = state;

  function apply(conversation, messages) {
    setState((s) => ({ conversation: { ...s.conversation, ...conversation, messages: undefined }, messages: merged(s.messages, messages || []), error: null }));
  }
  async function poll() {
    const { messages } = latest.current;
    const after = messages.length ? messages[messages.length - 1].message_id : undefined;
    try {
      const c = await api.get(path(id), { query: { after } });
      apply(c, c.messages);
    } catch (error) {
      setState((s) => ({ ...s, error }));
    }
  }
  useEffect(() => {
    poll();
  }, [id]);
  // The socket: pushes reach the conversation's customer and its assigned person.
  useEffect(() => {
    let socket = null;
    let closed = false;
    api
      .post("/support/socket-tickets")
      .then((ticket) => {
        if (closed || !ticket.url) return;
        socket = new WebSocket(`${ticket.url}?ticket=${encodeURIComponent(ticket.ticket)}`);
        socket.onopen = () => setSocketOpen(true);
        socket.onclose = () => setSocketOpen(false);
        socket.onerror = () => setSocketOpen(false);
        socket.onmessage = (event) => {
          let data;
          try {
            data = JSON.parse(event.data);
          } catch {
            return;
          }
          if (data.conversation_id !== id) return;
          if (data.type === "message" && data.message) {
            // A push names a message's photos without their links: read it for them.
            if ((data.message.photos || []).length) poll();
            else apply({}, [data.message]);
          }
          if (data.type === "status") {
            apply({ status: data.status }, []);
            poll(); // the rest moves with the status (the due time, for one)
          }
        };
      })
      .catch(() => setSocketOpen(false));
    return () => {
      closed = true;
      if (socket) socket.close();
    };
  }, [id]);
  const pushed = socketOpen && state.conversation?.assigned_to === userId;
  useEffect(() => {
    if (pushed) return undefined;
    const timer = setInterval(poll, POLL_MS);
    return () => clearInterval(timer);
  }, [id, pushed]);
  return { ...state, live: pushed, poll, apply };
}

function authorLabel(m, t, userId) {
  if (m.author === "customer") return t("conv.author.customer");
  if (m.author === "assistant") return t("conv.author.assistant");
  return m.author_id === userId ? t("conv.author.you") : t("conv.author.agent", { id: m.author_id });
}

function Photos({ m, t }) {
  const links = m.photo_urls || [];
  if (links.length) {
    return html`<div class="photos">${links.map((p, i) => html`<a href=${p.url} target="_blank" rel="noopener noreferrer"><img src=${p.url} alt=${t("conv.photo", { n: i + 1 })} loading="lazy" /></a>`)}</div>`;
  }
  if ((m.photos || []).length) return html`<p class="muted">${t("conv.photos", { n: m.photos.length })}</p>`;
  return null;
}

export function ConversationPage({ api, t, lang, href, params, user }) {
  const id = params.conversationId;
  const live = useLiveConversation(api, id, user.id);
  const c = live.conversation;
  const end = useRef(null);
  useEffect(() => {
    if (end.current) end.current.scrollTop = end.current.scrollHeight; // the newest in view
  }, [live.messages.length]);
  if (!c && live.error) return html`<h1>${t("conv.title")}</h1><${ErrorText} error=${live.error} t=${t} />`;
  if (!c) return html`<${Loading} t=${t} />`;
  const closed = c.status === "closed";
  return html`<h1>${c.subject}</h1>
    <p><a href=${href("/conversations")}>${t("conv.back")}</a></p>
    <div class="conversation">
      <section aria-labelledby="messages-title">
        <h2 id="messages-title">${t("conv.messages")} <span class="muted live">${live.live ? t("conv.live") : t("conv.polling")}</span></h2>
        <ol class="chat" aria-live="polite" ref=${end} tabindex="0" aria-labelledby="messages-title">
          ${live.messages.map((m) => html`<li class=${"msg " + m.author} data-author=${m.author} key=${m.message_id}>
            <p class="meta"><strong>${authorLabel(m, t, user.id)}</strong> <span class="muted">${formatDate(m.created_at, lang, true)}</span></p>
            <p class="text">${m.body}</p>
            <${Photos} m=${m} t=${t} />
          </li>`)}
        </ol>
        <${ErrorText} error=${live.error} t=${t} />
        ${closed ? html`<p class="muted">${t("conv.closedNote")}</p>` : html`<${ReplyForm} api=${api} t=${t} lang=${lang} id=${id} done=${(posted) => (live.apply({ status: posted.status }, [posted.message, ...posted.replies]), live.poll())} />`}
      </section>
      <aside>
        <dl class="facts panel">
          <dt>${t("order.status")}</dt><dd data-field="status"><${Status} status=${c.status} t=${t} /></dd>
          <dt>${t("order.customer")}</dt><dd><a href=${href((inGroup(user, SUPPORT) ? "/support?customer=" : "/orders?customer=") + encodeURIComponent(c.customer_id))}>${c.customer_id}</a></dd>
          <dt>${t("conv.assignedTo")}</dt><dd data-field="assigned">${c.assigned_to ? (c.assigned_to === user.id ? t("conv.me") : c.assigned_to) : t("conv.unassigned")}</dd>
          <dt>${t("conv.due")}</dt><dd><${Due} c=${c} t=${t} lang=${lang} /></dd>
          <dt>${t("order.created")}</dt><dd>${formatDate(c.created_at, lang, true)}</dd>
          ${c.rating && html`<dt>${t("conv.rating")}</dt><dd>${"★".repeat(c.rating)}${"☆".repeat(5 - c.rating)}</dd>`}
        </dl>
        ${(c.intent || c.order_id) && html`<section class="panel" aria-labelledby="handoff-title">
          <h2 id="handoff-title">${t("conv.handoff")}</h2>
          <dl class="facts">
            ${c.intent && html`<dt>${t("conv.intent")}</dt><dd data-field="intent">${t("intent." + c.intent)}</dd>`}
            ${c.order_id && html`<dt>${t("order.id")}</dt><dd><a href=${href("/orders/" + encodeURIComponent(c.order_id))}>${c.order_id}</a></dd>`}
          </dl>
        </section>`}
        <${Actions} api=${api} t=${t} id=${id} c=${c} user=${user} done=${(updated) => live.apply(updated, [])} />
      </aside>
    </div>`;
}

function ReplyForm({ api, t, lang, id, done }) {
  const action = useAction(t);
  const canned = useLoad(() => api.get("/support/canned-replies"), []);
  const [text, setText] = useState("");
  const [key, setKey] = useState("");
  const items = canned.data?.items || [];
  function insert() {
    const reply = items.find((r) => r.key === key) || items[0];
    if (!reply) return;
    const words = reply[lang] || reply.en;
    setText((now) => (now.trim() ? `${now.replace(/\s+$/, "")}\n${words}` : words));
  }
  async function submit(event) {
    event.preventDefault();
    const body = text.trim();
    if (!body) return;
    const posted = await action.run(() => api.post(`${path(id)}/messages`, { body }), t("conv.sent"));
    if (posted) {
      setText("");
      done(posted);
    }
  }
  return html`<form class="panel" onSubmit=${submit} aria-labelledby="reply-title">
    <h2 id="reply-title">${t("conv.reply")}</h2>
    ${items.length > 0 && html`<div class="row">
      <label>${t("conv.canned")}<select value=${key || items[0].key} onChange=${(e) => setKey(e.target.value)}>
        ${items.map((r) => html`<option value=${r.key}>${r.key} — ${clip(r[lang] || r.en, 40)}</option>`)}
      </select></label>
      <button type="button" class="secondary" onClick=${insert}>${t("conv.insert")}</button>
    </div>`}
    <label>${t("conv.yourReply")}<textarea name="body" rows="4" maxlength="2000" required value=${text} onInput=${(e) => setText(e.target.value)}></textarea></label>
    <p><button disabled=${action.busy || !text.trim()}>${t("conv.send")}</button></p>
    ${action.status}
  </form>`;
}

function clip(text, n) {
  const s = String(text || "");
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

function Actions({ api, t, id, c, user, done }) {
  const action = useAction(t);
  async function assign(agentId, doneText) {
    const updated = await action.run(() => api.post(`${path(id)}/assign`, { agent_id: agentId }), doneText);
    if (updated) done(updated);
  }
  async function resolve() {
    const updated = await action.run(() => api.post(`${path(id)}/resolve`), t("conv.resolved"));
    if (updated) done(updated);
  }
  function assignOther(event) {
    event.preventDefault();
    const agent = (formValues(event.currentTarget).agent || "").trim();
    if (agent) assign(agent, t("conv.assignedDone", { id: agent }));
  }
  const finished = c.status === "resolved" || c.status === "closed";
  return html`<section class="panel" aria-labelledby="actions-title">
    <h2 id="actions-title">${t("conv.actions")}</h2>
    <p class="row">
      <button class="secondary" disabled=${action.busy || c.assigned_to === user.id || c.status === "closed"} onClick=${() => assign(user.id, t("conv.assignedToMe"))}>${t("conv.assignMe")}</button>
      <button disabled=${action.busy || finished} onClick=${resolve}>${t("conv.resolve")}</button>
    </p>
    <form class="row" onSubmit=${assignOther}>
      <label>${t("conv.agentId")}<input name="agent" required pattern="[A-Za-z0-9._\\-]{1,64}" /></label>
      <button class="secondary" disabled=${action.busy || c.status === "closed"}>${t("conv.assign")}</button>
    </form>
    ${action.status}
  </section>`;
}

export function CannedRepliesPage({ api, t, lang, user }) {
  const list = useLoad(() => api.get("/support/canned-replies"), []);
  const editable = inGroup(user, OPS);
  return html`<h1>${t("canned.title")}</h1>
    <${ErrorText} error=${list.error} t=${t} />
    ${list.loading && !list.data ? html`<${Loading} t=${t} />` : html`
      ${(list.data?.items || []).map((r) => html`<${CannedForm} key=${r.key + r.updated_at} api=${api} t=${t} lang=${lang} reply=${r} editable=${editable} done=${list.reload} />`)}
      ${list.data && list.data.items.length === 0 && html`<p>${t("empty")}</p>`}
      ${editable && html`<${CannedForm} key="new" api=${api} t=${t} lang=${lang} reply=${null} editable=${true} done=${list.reload} />`}`}`;
}

function CannedForm({ api, t, lang, reply, editable, done }) {
  const action = useAction(t);
  const [problem, setProblem] = useState(null);
  const title = reply ? reply.key : t("canned.new");
  const titleId = "canned-" + (reply ? reply.key : "new");
  async function submit(event) {
    event.preventDefault();
    const v = formValues(event.currentTarget);
    const key = reply ? reply.key : (v.key || "").trim();
    if (!KEY.test(key)) return setProblem(t("canned.badKey"));
    setProblem(null);
    const saved = await action.run(() => api.put(`/support/canned-replies/${encodeURIComponent(key)}`, { "zh-CN": v.zh, en: v.en }));
    if (saved) done();
  }
  return html`<form class="panel" onSubmit=${submit} aria-labelledby=${titleId} data-canned=${reply ? reply.key : "new"}>
    <h2 id=${titleId}>${title}</h2>
    ${!reply && html`<label>${t("canned.key")}<input name="key" required pattern="[a-z0-9][a-z0-9_\\-]{0,63}" /></label>`}
    <div class="cards">
      <label>${t("canned.zh")}<textarea name="zh" lang="zh-CN" required maxlength="2000" readonly=${!editable} value=${reply ? reply["zh-CN"] : ""}></textarea></label>
      <label>${t("canned.en")}<textarea name="en" lang="en" required maxlength="2000" readonly=${!editable} value=${reply ? reply.en : ""}></textarea></label>
    </div>
    ${reply && html`<p class="muted">${t("canned.updated", { by: reply.updated_by, at: formatDate(reply.updated_at, lang, true) })}</p>`}
    ${editable && html`<button disabled=${action.busy}>${t("save")}</button>`}
    ${problem && html`<p class="error" role="alert">${problem}</p>`}
    ${action.status}
  </form>`;
}
