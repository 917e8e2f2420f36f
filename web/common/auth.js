// Sign-in with OAuth 2.0 authorization code + PKCE (Cognito's hosted UI in AWS, the local
// identity provider's same endpoints locally). Tokens live in sessionStorage only, leave the
// URL as soon as the callback has read the code, and are refreshed before they expire.
import { base64url } from "./api.js";

const TOKENS = "orderdesk.tokens";
const PENDING = "orderdesk.pkce";
const REFRESH_MARGIN_SECONDS = 60;

export function createAuth(identity, { callbackPath, homePath }) {
  const redirectUri = identity.redirect_uri || new URL(callbackPath, location.origin).href;
  const logoutUri = identity.logout_uri || new URL(homePath, location.origin).href;
  let tokens = read(TOKENS);
  let refreshing = null;
  let timer = null;
  const listeners = new Set();

  function notify() {
    for (const fn of listeners) fn(user());
  }

  function store(answer) {
    const now = Math.floor(Date.now() / 1000);
    tokens = {
      access_token: answer.access_token,
      id_token: answer.id_token || tokens?.id_token,
      refresh_token: answer.refresh_token || tokens?.refresh_token,
      expires_at: now + Number(answer.expires_in || 3600),
    };
    sessionStorage.setItem(TOKENS, JSON.stringify(tokens));
    schedule();
    notify();
  }

  function schedule() {
    clearTimeout(timer);
    if (!tokens?.refresh_token) return;
    const wait = tokens.expires_at - REFRESH_MARGIN_SECONDS - Date.now() / 1000;
    timer = setTimeout(() => refresh().catch(() => {}), Math.max(wait, 0) * 1000);
  }

  async function tokenRequest(fields) {
    const response = await fetch(identity.token_endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: identity.client_id, ...fields }),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.error || `token endpoint: ${response.status}`);
    return answer;
  }

  function refresh() {
    if (!tokens?.refresh_token) return Promise.resolve(null);
    refreshing ??= tokenRequest({ grant_type: "refresh_token", refresh_token: tokens.refresh_token })
      .then(store)
      .catch((error) => {
        clear();
        throw error;
      })
      .finally(() => {
        refreshing = null;
      });
    return refreshing;
  }

  function clear() {
    tokens = null;
    clearTimeout(timer);
    sessionStorage.removeItem(TOKENS);
    notify();
  }

  /** The access token, refreshed first when it is about to expire; null when signed out. */
  async function accessToken() {
    if (!tokens) return null;
    if (tokens.expires_at - Date.now() / 1000 < REFRESH_MARGIN_SECONDS) {
      await refresh().catch(() => null);
    }
    return tokens?.access_token ?? null;
  }

  function user() {
    if (!tokens) return null;
    const claims = decode(tokens.id_token) || decode(tokens.access_token) || {};
    return {
      id: claims["cognito:username"] || claims.username || claims.sub,
      sub: claims.sub,
      name: claims.name || claims["cognito:username"] || claims.username,
      email: claims.email,
      groups: decode(tokens.access_token)?.["cognito:groups"] || [],
    };
  }

  /** Go to the provider's sign-in page; come back to returnTo afterwards. */
  async function signIn(returnTo = location.pathname + location.search, lang) {
    const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
    const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, returnTo }));
    const url = new URL(identity.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: identity.client_id,
      redirect_uri: redirectUri,
      scope: identity.scope || "openid",
      state,
      code_challenge: base64url(digest),
      code_challenge_method: "S256",
      ...(lang ? { lang } : {}),
    });
    location.assign(url.href);
  }

  /** On the callback page: trade the code for tokens, then drop the code from the URL. */
  async function completeSignIn() {
    const params = new URLSearchParams(location.search);
    const pending = read(PENDING);
    sessionStorage.removeItem(PENDING);
    history.replaceState(null, "", location.pathname); // the code never stays in the URL
    if (params.get("error")) throw new Error(params.get("error_description") || params.get("error"));
    if (!pending || !params.get("code") || params.get("state") !== pending.state) {
      throw new Error("The sign-in answer does not match this browser's request.");
    }
    store(
      await tokenRequest({
        grant_type: "authorization_code",
        code: params.get("code"),
        redirect_uri: redirectUri,
        code_verifier: pending.verifier,
      }),
    );
    return pending.returnTo || homePath;
  }

  /** Forget the tokens here and end the provider's session too. */
  function signOut() {
    clear();
    const url = new URL(identity.end_session_endpoint);
    url.search = new URLSearchParams({
      client_id: identity.client_id,
      logout_uri: logoutUri,
    });
    location.assign(url.href);
  }

  schedule();
  return {
    accessToken,
    user,
    signIn,
    completeSignIn,
    signOut,
    refresh,
    onChange: (fn) => (listeners.add(fn), () => listeners.delete(fn)),
  };
}

function read(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

function decode(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}
