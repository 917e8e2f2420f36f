"""The storefront in Debian's Chromium: how fast it shows up, how fast search answers, its size.

Starts a local stack with demo data on free ports, then with headless Chromium:

- **home** and **product page**: DOMContentLoaded and largest contentful paint (LCP), each
  the median of 10 loads in a fresh browser context (an empty cache, as a first visit);
- **search**: from the keystroke that completes a query to its results on screen (the
  debounce included), p50 and p95 of 20 searches in Chinese and English;
- **shipped bytes**: the gzipped size of every JavaScript file the shop can load (vendored
  libraries included; the budget is 100 KB), and what the home page actually transfers.

Targets: home LCP <= 1 s, search p95 <= 300 ms. Figures only, not pass/fail.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
LOADS = 10
SEARCHES = 20
JS_BUDGET_BYTES = 100 * 1024
STARTUP_SECONDS = 240.0
SEARCH_WAIT_MS = 60  # the shop's debounce (web/shop/pages/catalogue.js)

# Reads the paint figures once the page shows its main heading.
_PAINT = """async () => {
  const nav = performance.getEntriesByType("navigation")[0];
  const lcp = await new Promise((resolve) => {
    new PerformanceObserver((list) => {
      const entries = list.getEntries();
      resolve(entries[entries.length - 1].startTime);
    }).observe({ type: "largest-contentful-paint", buffered: true });
    setTimeout(() => resolve(null), 3000);
  });
  return { dcl: nav.domContentLoadedEventEnd, lcp };
}"""

# Clears the box, then types a whole query as one keystroke and waits for its results.
_SEARCH = """async (query) => {
  const box = document.querySelector("input[type=search]");
  box.value = "";
  box.dispatchEvent(new Event("input", { bubbles: true }));
  await new Promise((r) => setTimeout(r, 200));
  const started = performance.now();
  box.value = query;
  box.dispatchEvent(new Event("input", { bubbles: true }));
  return await new Promise((resolve) => {
    const look = () => {
      const title = document.getElementById("results-title");
      const shown = document.querySelector("[data-testid=search-results]");
      if (title && shown && title.textContent.includes(query)) {
        resolve(performance.now() - started);
      } else {
        requestAnimationFrame(look);
      }
    };
    look();
  });
}"""


def _free_ports() -> tuple[int, int]:
    import socket

    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        return int(first.getsockname()[1]), int(second.getsockname()[1])


@contextmanager
def _stack() -> Iterator[str]:
    from infra.local.stack import stack_file_for

    port, moto_port = _free_ports()
    log_path = ROOT / ".local" / "logs" / f"bench-shop-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = ["infra.local.stack", "--port", str(port), "--moto-port", str(moto_port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        path = stack_file_for(port)
        while True:
            if process.poll() is not None:
                code = process.returncode
                raise RuntimeError(f"the local stack exited ({code}); see {log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError("the local stack did not start in time")
            with suppress(OSError, ValueError, KeyError):
                if json.loads(path.read_text())["pid"] == process.pid:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                        break
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def shipped_javascript() -> dict[str, int]:
    """Gzipped bytes of every script the shop can load: its own, the shared code, vendored."""
    files = [*sorted((WEB / "shop").rglob("*.js")), *sorted((WEB / "common").rglob("*.js"))]
    files += sorted((WEB / "common").rglob("*.mjs"))
    return {str(f.relative_to(WEB)): len(gzip.compress(f.read_bytes(), 9)) for f in files}


def _page_figures(browser: Any, url: str, ready: str) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(url)
        page.locator(ready).first.wait_for()
        figures: dict[str, float] = page.evaluate(_PAINT)
        transferred = page.evaluate(
            "performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
            ".reduce((n, e) => n + (e.encodedBodySize || 0), 0)"
        )
        figures["bytes"] = float(transferred)
        return figures
    finally:
        context.close()


def _median(values: list[float | None]) -> float:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else float("nan")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


def _queries(api_url: str) -> list[str]:
    with urllib.request.urlopen(f"{api_url}/products?limit=50", timeout=10) as answer:
        products = json.load(answer)["items"]
    queries: list[str] = []
    for product in products:
        queries.append(product["name"]["zh-CN"][:2])
        queries.append(product["name"]["en"].split()[0].lower())
    unique = list(dict.fromkeys(q for q in queries if q.strip()))
    return unique[:SEARCHES]


def main() -> None:
    from playwright.sync_api import sync_playwright

    sizes = shipped_javascript()
    total = sum(sizes.values())
    vendored = sum(size for name, size in sizes.items() if "/vendor/" in name)
    print(
        f"shop JavaScript, gzipped: {total / 1024:.1f} KB in {len(sizes)} files "
        f"(vendored {vendored / 1024:.1f} KB; budget {JS_BUDGET_BYTES // 1024} KB)"
    )
    if not Path(CHROMIUM).exists():
        print(f"no Chromium at {CHROMIUM}: browser figures skipped (make browser-deps)")
        return
    with _stack() as api_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            pages = {
                "home": (f"{api_url}/shop/", "h2"),
                "product page": (f"{api_url}/shop/products/EL-EARBUDS-PRO", "h1"),
            }
            _page_figures(browser, *pages["home"])  # the workers' first answers are slower
            for name, (url, ready) in pages.items():
                runs = [_page_figures(browser, url, ready) for _ in range(LOADS)]
                print(
                    f"{name:<13} DOMContentLoaded {_median([r['dcl'] for r in runs]):6.0f} ms   "
                    f"LCP {_median([r['lcp'] for r in runs]):6.0f} ms   "
                    f"transferred {_median([r['bytes'] for r in runs]) / 1024:.1f} KB "
                    f"(median of {LOADS})"
                )
            context = browser.new_context(locale="zh-CN")
            page = context.new_page()
            page.goto(f"{api_url}/shop/")
            page.locator("input[type=search]").wait_for()
            page.evaluate(_SEARCH, "warm")
            timings = [float(page.evaluate(_SEARCH, q)) for q in _queries(api_url)]
            context.close()
            api_times = []
            for query in _queries(api_url):
                started = time.perf_counter()
                url = f"{api_url}/products?limit=8&q={urllib.parse.quote(query)}"
                with urllib.request.urlopen(url, timeout=30) as answer:
                    answer.read()
                api_times.append((time.perf_counter() - started) * 1000)
            print(
                f"search        keystroke to results p50 {_percentile(timings, 0.5):5.0f} ms   "
                f"p95 {_percentile(timings, 0.95):5.0f} ms   ({len(timings)} searches; "
                f"target p95 <= 300 ms)"
            )
            print(
                f"  of which GET /products?q= alone p50 {_percentile(api_times, 0.5):5.0f} ms   "
                f"p95 {_percentile(api_times, 0.95):5.0f} ms (the rest: {SEARCH_WAIT_MS} ms "
                "debounce and drawing)"
            )
        finally:
            browser.close()


if __name__ == "__main__":
    main()
