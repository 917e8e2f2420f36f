// The account: notification inbox, profile and preferences, saved cards, address book.
import { html, useEffect, useState } from "../../common/html.js";
import { formatDate } from "../../common/i18n.js";
import { AddressForm, addressLine } from "./checkout.js";
import { Problem, useLoad } from "./shared.js";

const CHANNELS = ["email", "sms", "push"];

export function AccountPage(ctx) {
  const { user, auth, t, lang } = ctx;
  if (!user) {
    return html`<h1>${t("account.title")}</h1><p><button onClick=${() => auth.signIn(undefined, lang)}>${t("nav.signIn")}</button></p>`;
  }
  return html`
    <h1>${t("account.title")}</h1>
    <${Inbox} ...${ctx} />
    <${Profile} ...${ctx} />
    <${Preferences} ...${ctx} />
    <${Cards} ...${ctx} />
    <${Addresses} ...${ctx} />
  `;
}

function Inbox({ api, t, lang }) {
  const inbox = useLoad(() => api.get("/me/notifications", { query: { limit: 20 } }), []);
  return html`<section aria-labelledby="inbox-title">
    <h2 id="inbox-title">${t("account.inbox")}</h2>
    <${Problem} error=${inbox.error} t=${t} />
    ${inbox.data && !inbox.data.items.length && html`<p>${t("account.inboxEmpty")}</p>`}
    <ul class="choices">
      ${(inbox.data?.items || []).map(
        (n) => html`<li key=${n.notification_id} class="card">
          <strong>${n.subject}</strong> <span class="muted">${t(`channel.${n.channel}`)} · ${formatDate(n.sent_at, lang, true)}</span>
          <div style="white-space:pre-line">${n.body}</div>
        </li>`,
      )}
    </ul>
  </section>`;
}

function Profile({ api, t }) {
  const profile = useLoad(() => api.get("/me"), []);
  const [form, setForm] = useState(null);
  const [saved, setSaved] = useState(null); // the profile as the API last answered
  const [status, setStatus] = useState(null);
  const [error, setError] = useState(null);
  const show = (answer) => {
    setSaved(answer);
    setForm(answer);
  };
  useEffect(() => {
    if (profile.data) show(profile.data);
  }, [profile.data]);
  if (!form) return html`<section><h2>${t("account.profile")}</h2><${Problem} error=${profile.error} t=${t} /></section>`;
  const set = (key) => (e) => setForm({ ...form, [key]: e.target.value });
  async function save(e) {
    e.preventDefault();
    setError(null);
    try {
      const { name, email, phone, locale } = form;
      show(await api.put("/me", { name: name || null, email: email || null, phone: phone || null, locale }));
      setStatus(t("account.saved"));
    } catch (err) {
      setError(err);
    }
  }
  return html`<section aria-labelledby="profile-title">
    <h2 id="profile-title">${t("account.profile")}</h2>
    <${EmailCheck} api=${api} t=${t} profile=${saved} onVerified=${show} />
    <form onSubmit=${save} class="card">
      <label for="p-name">${t("account.name")}</label><input id="p-name" value=${form.name || ""} onInput=${set("name")} autocomplete="name" />
      <label for="p-email">${t("account.email")}</label><input id="p-email" type="email" value=${form.email || ""} onInput=${set("email")} autocomplete="email" />
      <label for="p-phone">${t("account.phone")}</label><input id="p-phone" type="tel" value=${form.phone || ""} onInput=${set("phone")} autocomplete="tel" />
      <label for="p-locale">${t("account.language")}</label>
      <select id="p-locale" value=${form.locale} onChange=${set("locale")}>
        <option value="zh-CN">中文</option><option value="en">English</option>
      </select>
      <${Problem} error=${error} t=${t} />
      <p><button type="submit">${t("account.save")}</button> <span role="status">${status || ""}</span></p>
    </form>
  </section>`;
}

// An address we do not send to (bounced, marked as spam, or never confirmed), and the way
// out: a code sent to it and typed back (POST /me/contact-verifications, then .../confirm).
function EmailCheck({ api, t, profile, onVerified }) {
  const [verification, setVerification] = useState(null);
  const [code, setCode] = useState("");
  const [error, setError] = useState(null);
  const status = profile.email_status;
  if (!profile.email || (status !== "undeliverable" && status !== "unverified")) return null;
  const reason = profile.email_undeliverable_reason === "complained" ? "complained" : "bounced";
  const notice = status === "undeliverable" ? t(`account.email.${reason}`, { email: profile.email }) : t("account.email.unverified", { email: profile.email });
  async function send() {
    setError(null);
    try {
      setVerification(await api.post("/me/contact-verifications", { channel: "email", value: profile.email }));
    } catch (err) {
      setError(err);
    }
  }
  async function confirm(e) {
    e.preventDefault();
    setError(null);
    try {
      onVerified(await api.post(`/me/contact-verifications/${encodeURIComponent(verification.verification_id)}/confirm`, { code: code.trim() }));
      setVerification(null);
      setCode("");
    } catch (err) {
      setError(err);
    }
  }
  return html`<div class="card" data-testid="email-check" style="border-left:4px solid var(--bad);margin-bottom:12px">
    <p class=${status === "undeliverable" ? "error" : ""}>${notice}</p>
    ${verification
      ? html`<form onSubmit=${confirm} class="row">
          <label for="email-code">${t("account.email.code", { email: profile.email })}</label>
          <input id="email-code" inputmode="numeric" autocomplete="one-time-code" maxlength="6" value=${code} onInput=${(e) => setCode(e.target.value)} />
          <button type="submit">${t("account.email.confirm")}</button>
        </form>`
      : html`<p><button type="button" onClick=${send}>${t("account.email.send")}</button></p>`}
    <${Problem} error=${error} t=${t} />
  </div>`;
}

function Preferences({ api, t }) {
  const prefs = useLoad(() => api.get("/me/notification-preferences"), []);
  const [form, setForm] = useState(null);
  const [status, setStatus] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (prefs.data) setForm(prefs.data);
  }, [prefs.data]);
  if (!form) return html`<section><h2>${t("account.prefs")}</h2><${Problem} error=${prefs.error} t=${t} /></section>`;
  const toggle = (group, key) => (e) => setForm({ ...form, [group]: { ...form[group], [key]: e.target.checked } });
  async function save(e) {
    e.preventDefault();
    setError(null);
    try {
      setForm(await api.put("/me/notification-preferences", form));
      setStatus(t("account.saved"));
    } catch (err) {
      setError(err);
    }
  }
  return html`<section aria-labelledby="prefs-title">
    <h2 id="prefs-title">${t("account.prefs")}</h2>
    <form onSubmit=${save}>
      <fieldset><legend>${t("account.channels")}</legend>
        ${CHANNELS.map((c) => html`<label key=${c}><input type="checkbox" checked=${form.channels[c]} onChange=${toggle("channels", c)} /> ${t(`channel.${c}`)}</label>`)}
      </fieldset>
      <fieldset><legend>${t("account.events")}</legend>
        ${Object.keys(form.events).map((ev) => html`<label key=${ev}><input type="checkbox" checked=${form.events[ev]} onChange=${toggle("events", ev)} /> ${t(`event.${ev}`)}</label>`)}
      </fieldset>
      <${Problem} error=${error} t=${t} />
      <p><button type="submit">${t("account.savePrefs")}</button> <span role="status">${status || ""}</span></p>
    </form>
  </section>`;
}

function Cards({ api, t }) {
  const cards = useLoad(() => api.get("/me/payment-methods"), []);
  const [error, setError] = useState(null);
  async function remove(id) {
    try {
      await api.del(`/me/payment-methods/${encodeURIComponent(id)}`);
      cards.reload();
    } catch (e) {
      setError(e);
    }
  }
  const items = cards.data?.items || [];
  return html`<section aria-labelledby="cards-title">
    <h2 id="cards-title">${t("account.cards")}</h2>
    <${Problem} error=${cards.error || error} t=${t} />
    ${cards.data && !items.length && html`<p>${t("account.noCards")}</p>`}
    <ul class="choices" data-testid="saved-cards">
      ${items.map(
        (m) => html`<li key=${m.id} class="card row">
          <span>${m.brand} •••• ${m.last4} (${String(m.exp_month).padStart(2, "0")}/${m.exp_year})</span>
          <button class="secondary" onClick=${() => remove(m.id)}>${t("account.deleteCard", { brand: m.brand, last4: m.last4 })}</button>
        </li>`,
      )}
    </ul>
  </section>`;
}

function Addresses({ api, t, lang }) {
  const book = useLoad(() => api.get("/me/addresses"), []);
  const [error, setError] = useState(null);
  const items = book.data?.items || [];
  async function add(address, makeDefault) {
    await api.post("/me/addresses", { ...address, is_default: makeDefault || undefined });
    book.reload();
  }
  async function remove(id) {
    try {
      await api.del(`/me/addresses/${encodeURIComponent(id)}`);
      book.reload();
    } catch (e) {
      setError(e);
    }
  }
  async function makeDefault(address) {
    try {
      const { address_id, ...rest } = address;
      await api.put(`/me/addresses/${encodeURIComponent(address_id)}`, { ...rest, is_default: true });
      book.reload();
    } catch (e) {
      setError(e);
    }
  }
  return html`<section aria-labelledby="book-title">
    <h2 id="book-title">${t("account.addresses")}</h2>
    <${Problem} error=${book.error || error} t=${t} />
    ${book.data && !items.length && html`<p>${t("account.noAddresses")}</p>`}
    <ul class="choices">
      ${items.map(
        (a) => html`<li key=${a.address_id} class="card">
          <div>${addressLine(a)} ${a.is_default && html`<strong>(${t("address.default")})</strong>`}</div>
          <div class="row">
            ${!a.is_default && html`<button class="secondary" onClick=${() => makeDefault(a)}>${t("address.makeDefault")}</button>`}
            <button class="secondary" onClick=${() => remove(a.address_id)}>${t("address.delete", { name: a.name })}</button>
          </div>
        </li>`,
      )}
    </ul>
    <details class="card"><summary>${t("account.addAddress")}</summary>
      <${AddressForm} api=${api} t=${t} lang=${lang} onSave=${add} saveLabel=${t("account.addAddress")} idPrefix="book" />
    </details>
  </section>`;
}
