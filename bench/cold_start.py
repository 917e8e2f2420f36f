"""Cold start: what a fresh Lambda process pays before and while it serves its first requests.

Each sample is a new process, as a new Lambda container is:

* **dependencies**: importing the runtime dependencies alone (the floor);
* **import app**: importing the app (target: at most 1.15x the dependencies);
* **first requests**: in the same fresh process, the first public ``GET /products`` and the
  first authorized ``GET /orders`` (the built-in authorizer fetches the issuer's JWKS, the
  DynamoDB client is created), served through the local API Gateway pipeline against the AWS
  emulator and a local identity provider.

Both kinds of process alternate so machine noise hits them alike; figures are medians.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.orders import _configure
from bench.transactions import _emulator

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("COLD_START_RUNS", "15"))
APP = "import app"
DEPENDENCIES_ONLY = (
    "import boto3, chalice, pydantic; from aws_lambda_powertools import Logger, Metrics"
)
# The gateway module is imported after the clock for the import stops and before the clock
# for the requests starts: it stands in for API Gateway, which is not in the function.
FRESH_PROCESS = """
import json, sys, time
started = time.perf_counter()
import app
imported = time.perf_counter()
from infra.local.gateway import ApiGateway, HttpRequest
gateway = ApiGateway(app.app)
def serve(target, headers):
    began = time.perf_counter()
    response = gateway.handle(HttpRequest("GET", target, headers))
    return (time.perf_counter() - began) * 1000, response.status
products_ms, products_status = serve("/products?limit=5", [])
orders_ms, orders_status = serve("/orders", [("Authorization", "Bearer " + sys.argv[1])])
print(json.dumps({
    "import_ms": (imported - started) * 1000,
    "products_ms": products_ms, "products_status": products_status,
    "orders_ms": orders_ms, "orders_status": orders_status,
}))
"""


def _environment() -> dict[str, str]:
    # Dependencies were byte-compiled by pip; let our modules be compiled once too, as they
    # are in a Lambda package built with compiled files, so both sides are measured alike.
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time_import(code: str) -> float:
    """Milliseconds for a whole fresh process that runs ``code``."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_environment(), check=True)
    return (time.perf_counter() - started) * 1000


def _fresh_app(token: str, env: dict[str, str]) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, token],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    if (figures["products_status"], figures["orders_status"]) != (200, 200):
        raise RuntimeError(f"first requests did not succeed: {figures}")
    return figures


def main() -> None:
    from infra.local.identity import LocalIdentityProvider

    with _emulator() as endpoint_url, tempfile.TemporaryDirectory() as scratch:
        _configure(endpoint_url)
        identity = LocalIdentityProvider(Path(scratch) / "idp-key.pem")
        identity.start()
        try:
            env = {**_environment(), **identity.env()}
            token = identity.mint("bench-shopper", ["customers"])
            _fresh_app(token, env)  # warm the OS file cache and write .pyc files first
            _time_import(DEPENDENCIES_ONLY)
            samples, app_times, dependency_times = [], [], []
            for _ in range(RUNS):
                samples.append(_fresh_app(token, env))
                app_times.append(_time_import(APP))
                dependency_times.append(_time_import(DEPENDENCIES_ONLY))
        finally:
            identity.stop()

    def median(key: str) -> float:
        return statistics.median(sample[key] for sample in samples)

    app_process, dependencies = statistics.median(app_times), statistics.median(dependency_times)
    print(
        f"cold start: a process importing the app {app_process:.0f} ms, the runtime dependencies "
        f"alone {dependencies:.0f} ms, ratio {app_process / dependencies:.2f} (target <= 1.15); "
        f"in a fresh process: import app {median('import_ms'):.0f} ms, first GET /products "
        f"{median('products_ms'):.0f} ms, first authorized GET /orders "
        f"{median('orders_ms'):.0f} ms (medians of {RUNS} fresh processes each)"
    )


if __name__ == "__main__":
    main()
