"""Cold start: what a fresh Lambda process pays before and while it serves its first requests.

Each sample is a new process, as a new Lambda container is:

* **dependencies**: importing, alone, the runtime dependencies that the cold start measured
  here loads: chalice, pydantic, Powertools Logger and Metrics, boto3 (the DynamoDB client of
  the first requests) and PyJWT (the authorizer). Not stripe, the X-Ray SDK or anything else
  in requirements.txt that these requests never load. This is the floor.
* **import app**: a process that imports the app and nothing else (target: at most 1.15x the
  dependencies). ``import app`` declares every route and handler; the use cases, repositories
  and SDKs behind them load on first use (``chalicelib/deferred.py``), so part of what the app
  used to pay at import it now pays in its first requests, which is why they are shown too.
* **first requests**: in a fresh process, ``import app`` then the first public
  ``GET /products`` and the first authorized ``GET /orders`` (the built-in authorizer fetches
  the issuer's JWKS, the DynamoDB client is created), served through the local API Gateway
  pipeline against the AWS emulator and a local identity provider.
* **with X-Ray** (as in Lambda, where the template turns tracing on): a process that imports
  the app and boto3 and starts the Tracer, against one that imports the app and boto3 only;
  the difference is what tracing adds to a cold start's first invocation.

Processes of each kind alternate so machine noise hits them alike; figures are medians. Each
is given as wall time and as the CPU time the process used (user + system): on a shared
machine the CPU time is the steadier of the two, and Lambda's import time is CPU-bound.
"""

from __future__ import annotations

import json
import os
import resource
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
    "import boto3, chalice, jwt, pydantic; from aws_lambda_powertools import Logger, Metrics"
)
APP_AND_SDK = "import app, boto3"
APP_SDK_AND_TRACER = (
    "import app, boto3; from chalicelib import observability; assert observability.tracer()"
)
# Lambda's own variable: the Tracer traces (and the X-Ray SDK samples locally) as in Lambda.
IN_LAMBDA = {"LAMBDA_TASK_ROOT": str(ROOT)}
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


def _time_import(code: str, extra_env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU milliseconds for a whole fresh process that runs ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**_environment(), **(extra_env or {})},
        check=True,
    )
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu


def _medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return (
        statistics.median(wall for wall, _ in samples),
        statistics.median(cpu for _, cpu in samples),
    )


def _fresh_app(token: str, env: dict[str, str]) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, token],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    figures["process_cpu_ms"] = (
        after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    ) * 1000
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
            samples: list[dict[str, float]] = []
            app_times: list[tuple[float, float]] = []
            dependency_times: list[tuple[float, float]] = []
            untraced_times: list[tuple[float, float]] = []
            traced_times: list[tuple[float, float]] = []
            for _ in range(RUNS):
                samples.append(_fresh_app(token, env))
                app_times.append(_time_import(APP))
                dependency_times.append(_time_import(DEPENDENCIES_ONLY))
                untraced_times.append(_time_import(APP_AND_SDK, IN_LAMBDA))
                traced_times.append(_time_import(APP_SDK_AND_TRACER, IN_LAMBDA))
        finally:
            identity.stop()

    def median(key: str) -> float:
        return statistics.median(sample[key] for sample in samples)

    (app_wall, app_cpu), (deps_wall, deps_cpu) = _medians(app_times), _medians(dependency_times)
    (untraced_wall, untraced_cpu), (traced_wall, traced_cpu) = (
        _medians(untraced_times),
        _medians(traced_times),
    )
    first_requests = median("import_ms") + median("products_ms") + median("orders_ms")
    print(
        f"cold start: a process importing the app {app_wall:.0f} ms (CPU {app_cpu:.0f} ms), "
        f"the runtime dependencies alone {deps_wall:.0f} ms (CPU {deps_cpu:.0f} ms), ratio "
        f"{app_wall / deps_wall:.2f} (CPU {app_cpu / deps_cpu:.2f}; target <= 1.15)\n"
        f"  in a fresh process: import app {median('import_ms'):.0f} ms, first GET /products "
        f"{median('products_ms'):.0f} ms, first authorized GET /orders "
        f"{median('orders_ms'):.0f} ms, {first_requests:.0f} ms in all (the whole process: CPU "
        f"{median('process_cpu_ms'):.0f} ms)\n"
        f"  with X-Ray (as in Lambda): import app and boto3 {untraced_wall:.0f} ms "
        f"(CPU {untraced_cpu:.0f} ms), and start the Tracer {traced_wall:.0f} ms "
        f"(CPU {traced_cpu:.0f} ms): tracing adds {traced_wall - untraced_wall:.0f} ms "
        f"(CPU {traced_cpu - untraced_cpu:.0f} ms)\n"
        f"  (medians of {RUNS} fresh processes of each kind)"
    )


if __name__ == "__main__":
    main()
