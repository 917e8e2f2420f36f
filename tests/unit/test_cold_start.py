"""``import app`` declares every route and handler without loading what they call.

A Lambda cold start pays for everything ``import app`` loads, in every function; the use
cases, repositories, SDKs and report code load on the first request that needs them
(``chalicelib/deferred.py``, ``make bench`` for the figures). Each check runs in a fresh
interpreter, as a new Lambda container is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Third-party packages the first requests may need, but declaring the app must not load.
HEAVY_PACKAGES = (
    "boto3",
    "s3transfer",
    "urllib3",
    "stripe",
    "cryptography",
    "jwt",
    "aws_xray_sdk",
)
# Our modules that only some requests or handlers run: payment providers, carriers,
# analytics and the report exports.
DEFERRED_MODULES = (
    "chalicelib.adapters.payments.card",
    "chalicelib.adapters.payments.alipay",
    "chalicelib.adapters.payments.wechat_pay",
    "chalicelib.adapters.carriers.kuaidi100",
    "chalicelib.adapters.carriers.aftership",
    "chalicelib.adapters.carriers.easypost",
    "chalicelib.adapters.reports_bucket",
    "chalicelib.domain.analytics",
    "chalicelib.domain.report_files",
    "chalicelib.domain.report_pages",
    "chalicelib.services.analytics",
    "chalicelib.services.exports",
    "chalicelib.services.orders",
    "chalicelib.services.payments",
    "chalicelib.store.orders",
    "chalicelib.store.analytics",
)


def _modules_after(code: str) -> dict[str, object]:
    probe = (
        f"{code}\nimport json, sys\n"
        "print(json.dumps({'modules': sorted(sys.modules), 'routes': len(app.app.routes)}))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def after_import_app() -> dict[str, object]:
    return _modules_after("import app")


def test_import_app_loads_no_sdk_that_only_some_requests_use(
    after_import_app: dict[str, object],
) -> None:
    modules = set(after_import_app["modules"])  # type: ignore[call-overload]
    loaded = sorted(name for name in modules if name.split(".")[0] in HEAVY_PACKAGES)
    assert loaded == []


def test_import_app_loads_no_use_case_repository_or_report_code(
    after_import_app: dict[str, object],
) -> None:
    modules = set(after_import_app["modules"])  # type: ignore[call-overload]
    assert sorted(modules & set(DEFERRED_MODULES)) == []
    assert (
        sorted(
            name
            for name in modules
            if name.startswith(("chalicelib.services.", "chalicelib.store."))
        )
        == []
    )


def test_import_app_still_declares_every_route(after_import_app: dict[str, object]) -> None:
    assert after_import_app["routes"] > 50  # type: ignore[operator]


def test_a_use_case_loads_when_first_used_and_patches_reach_the_real_module() -> None:
    probe = (
        "import sys\n"
        "from chalicelib.services import orders\n"
        "assert 'chalicelib.services.orders' not in sys.modules\n"
        "place = orders.place_order\n"
        "real = sys.modules['chalicelib.services.orders']\n"
        "assert place is real.place_order\n"
        "orders.DEFAULT_ATTEMPTS_FOR_TEST = 7\n"
        "assert real.DEFAULT_ATTEMPTS_FOR_TEST == 7\n"
        "import chalicelib.services as services\n"
        "assert services.orders is real\n"
        "print('ok')\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"


def test_a_missing_use_case_is_an_import_error_not_a_stand_in() -> None:
    probe = "from chalicelib.services import no_such_use_case\n"
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode != 0
    assert "ImportError" in completed.stderr


def test_monkeypatching_a_stand_in_is_undone_on_the_real_module() -> None:
    probe = (
        "import sys\n"
        "import pytest\n"
        "from chalicelib.store import inventory\n"
        "real_get_levels = inventory.get_levels\n"
        "patch = pytest.MonkeyPatch()\n"
        "patch.setattr(inventory, 'get_levels', lambda *a, **k: {})\n"
        "assert sys.modules['chalicelib.store.inventory'].get_levels(1, 2) == {}\n"
        "patch.undo()\n"
        "assert sys.modules['chalicelib.store.inventory'].get_levels is real_get_levels\n"
        "print('ok')\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"
