// Starting a web app: its config, sign-in, API client and router, then its App rendered into
// #app; a failure to start is shown there as text.
import { html, render } from "./html.js";
import { createApi } from "./api.js";
import { createAuth } from "./auth.js";
import { loadConfig } from "./config.js";
import { createRouter } from "./router.js";

export function startApp(base, App) {
  const root = document.getElementById("app");
  start(base, App, root).catch((error) => {
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = String(error.message || error);
    root.replaceChildren(p);
  });
}

async function start(base, App, root) {
  const config = await loadConfig();
  const auth = createAuth(config.identity, { callbackPath: `${base}callback`, homePath: base });
  const api = createApi(config.api_url, auth.accessToken);
  const router = createRouter(base, (route) => router.onChange && router.onChange(route));
  root.replaceChildren();
  render(html`<${App} config=${config} auth=${auth} api=${api} router=${router} />`, root);
}
