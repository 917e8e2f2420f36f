// Each app reads its config.json (API base URL, identity provider, Stripe key) once.
let loaded = null;

export function loadConfig(url = "config.json") {
  loaded ??= fetch(new URL(url, document.baseURI), { credentials: "same-origin" }).then((r) => {
    if (!r.ok) throw new Error(`config.json: ${r.status}`);
    return r.json();
  });
  return loaded;
}
