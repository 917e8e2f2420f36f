"""What the function package ships: Chalice's deployment.zip less what never runs in Lambda.

Chalice zips every installed runtime dependency whole. Most of the bytes are botocore's API
models for ~400 AWS services the app never calls (16 of 30 MB zipped), so ``slim`` rewrites
the zip keeping only the models of ``SHIPPED_AWS_SERVICES`` and leaving out a short list of
modules that nothing imports at run time, then recompresses it at the highest level.

The list of services is the contract: ``tests/unit/test_lambda_bundle.py`` fails when code
creates a boto3 client or resource for a service that is not on it, and ``verify`` imports
the app and creates every shipped client from the unpacked zip alone, in an interpreter that
sees no other site-packages.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# Every AWS service the app's code creates a client or resource for.
SHIPPED_AWS_SERVICES = frozenset(
    {"apigatewaymanagementapi", "dynamodb", "s3", "secretsmanager", "ses", "sns", "sqs"}
)

BOTOCORE_MODELS = "botocore/data/"

# Shipped by the dependencies, imported by nothing the app runs.
UNUSED_PATHS = (
    # Powertools' own HTTP resolvers and their Swagger UI: Chalice routes our requests.
    "aws_lambda_powertools/event_handler/",
    # Request parameter TypedDicts, imported only under TYPE_CHECKING.
    "stripe/params/",
    # Typed v2 "thin" event notifications; card webhooks are v1 snapshot events.
    "stripe/events/",
    # pydantic's v1 compatibility copy; the app is written for v2.
    "pydantic/v1/",
    # Byte-code and type stubs are rebuilt or unused in Lambda.
    "__pycache__/",
)
# pip's install manifests (importlib.metadata reads METADATA, never RECORD) and the C
# sources of compiled extensions, shipped beside the built library.
UNUSED_SUFFIXES = (".pyc", ".pyi", ".dist-info/RECORD", ".c")
# The X-Ray SDK's integrations: only those for the modules the Tracer patches
# (chalicelib/observability.py TRACED_MODULES) and the modules they import run.
XRAY_EXTENSIONS = "aws_xray_sdk/ext/"
USED_XRAY_EXTENSIONS = (
    "__init__.py",
    "util.py",
    "boto_utils.py",
    "resources/",
    "botocore/",
    "httplib/",
)


@dataclass(frozen=True)
class BundleReport:
    before_bytes: int
    after_bytes: int
    largest: list[tuple[str, int]]  # (top-level package, zipped bytes), largest first


def is_shipped(name: str) -> bool:
    """Whether the zip entry ``name`` belongs in the function package."""
    if name.startswith(BOTOCORE_MODELS):
        rest = name[len(BOTOCORE_MODELS) :]
        # Files directly under data/ (endpoints, partitions, retry and default config) stay.
        return "/" not in rest or rest.split("/", 1)[0] in SHIPPED_AWS_SERVICES
    if any(f"/{path}" in f"/{name}" for path in UNUSED_PATHS):
        return False
    if name.startswith(XRAY_EXTENSIONS):
        return name[len(XRAY_EXTENSIONS) :].startswith(USED_XRAY_EXTENSIONS)
    return not name.endswith(UNUSED_SUFFIXES)


def slim(zip_path: Path) -> BundleReport:
    """Rewrite ``zip_path`` in place with only the shipped entries, compressed at level 9."""
    before = zip_path.stat().st_size
    slimmed = zip_path.with_suffix(".slim.zip")
    with (
        zipfile.ZipFile(zip_path) as source,
        zipfile.ZipFile(slimmed, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target,
    ):
        for entry in source.infolist():
            if is_shipped(entry.filename):
                # Keep each entry's permissions and timestamp (the .so files stay executable).
                target.writestr(entry, source.read(entry), zipfile.ZIP_DEFLATED, 9)
    slimmed.replace(zip_path)
    return BundleReport(before, zip_path.stat().st_size, largest_contributors(zip_path))


def largest_contributors(zip_path: Path, count: int = 10) -> list[tuple[str, int]]:
    sizes: Counter[str] = Counter()
    with zipfile.ZipFile(zip_path) as bundle:
        for entry in bundle.infolist():
            sizes[entry.filename.split("/", 1)[0]] += entry.compress_size
    return sizes.most_common(count)


# Run by a bare interpreter (-I -S: no site-packages) with only the unpacked bundle on its path.
# LAMBDA_TASK_ROOT makes it trace as in Lambda: the X-Ray SDK loads and patches from the bundle.
_VERIFY_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
import app
import boto3
from chalicelib import observability
assert observability.tracer() is not None, "tracing did not start"
for service in sys.argv[2:]:
    boto3.client(service, region_name="us-east-1")
boto3.resource("dynamodb", region_name="us-east-1")
"""


def verify(zip_path: Path) -> None:
    """Import the app and create every shipped client from the bundle alone; raise if not."""
    with tempfile.TemporaryDirectory(prefix="bundle-") as scratch:
        with zipfile.ZipFile(zip_path) as bundle:
            bundle.extractall(scratch)
        completed = subprocess.run(
            [
                getattr(sys, "_base_executable", sys.executable),
                "-I",
                "-S",
                "-c",
                _VERIFY_SCRIPT,
                scratch,
                *sorted(SHIPPED_AWS_SERVICES),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={
                "AWS_ACCESS_KEY_ID": "x",
                "AWS_SECRET_ACCESS_KEY": "x",
                "STAGE": "dev",
                "LAMBDA_TASK_ROOT": scratch,
            },
        )
    if completed.returncode != 0:
        raise RuntimeError(f"the slimmed bundle does not run:\n{completed.stderr[-3000:]}")
