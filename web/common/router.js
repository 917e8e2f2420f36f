// History-API routing under an app's base path (/shop/...). Links are ordinary <a href>s.
export function createRouter(base, onChange) {
  const strip = (path) => (path.startsWith(base) ? path.slice(base.length) : path) || "/";
  function current() {
    return { path: strip(location.pathname).replace(/^\/?/, "/"), query: new URLSearchParams(location.search) };
  }
  function go(path, { replace = false } = {}) {
    const url = path.startsWith(base) ? path : base + path.replace(/^\//, "");
    history[replace ? "replaceState" : "pushState"](null, "", url);
    onChange(current());
    window.scrollTo(0, 0);
  }
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[href]");
    if (!link || event.defaultPrevented || event.button !== 0 || link.target) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const url = new URL(link.href);
    if (url.origin !== location.origin || !url.pathname.startsWith(base)) return;
    event.preventDefault();
    go(url.pathname + url.search);
  });
  addEventListener("popstate", () => onChange(current()));
  return { current, go, href: (path) => base + path.replace(/^\//, "") };
}

/** Match "/orders/:id" against "/orders/o-1" -> {id: "o-1"} (or null). */
export function match(pattern, path) {
  const want = pattern.replace(/\/$/, "").split("/");
  const have = path.replace(/\/$/, "").split("/");
  if (want.length !== have.length) return null;
  const params = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(":")) params[want[i].slice(1)] = decodeURIComponent(have[i]);
    else if (want[i] !== have[i]) return null;
  }
  return params;
}
