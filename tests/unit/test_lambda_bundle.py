"""The function package ships only the AWS models and modules the app runs."""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path

import pytest

from infra.lambda_bundle import SHIPPED_AWS_SERVICES, is_shipped, slim

ROOT = Path(__file__).resolve().parents[2]


def aws_services_created_in(source: str) -> list[str | None]:
    """The service named by every ``<x>.client(...)`` / ``<x>.resource(...)`` on boto3 or a
    boto3 session in ``source``; None where the name is not a string literal."""
    services: list[str | None] = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in ("client", "resource"):
            continue
        owner = ast.unparse(node.func.value)
        if "boto3" not in owner and "session" not in owner.lower():
            continue
        first = node.args[0] if node.args else None
        literal = isinstance(first, ast.Constant) and isinstance(first.value, str)
        services.append(first.value if literal else None)  # type: ignore[union-attr]
    return services


def runtime_sources() -> list[Path]:
    return [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]


def test_every_aws_client_the_app_creates_has_its_model_shipped() -> None:
    missing = {}
    for path in runtime_sources():
        for service in aws_services_created_in(path.read_text(encoding="utf-8")):
            if service is None or service not in SHIPPED_AWS_SERVICES:
                missing.setdefault(str(path.relative_to(ROOT)), []).append(service)
    assert not missing, f"add these to SHIPPED_AWS_SERVICES (or name them literally): {missing}"


def test_the_scan_sees_clients_resources_and_session_clients() -> None:
    source = (
        "import boto3\n"
        "a = boto3.client('ec2')\n"
        "b = boto3.resource('dynamodb')\n"
        "c = boto3.session.Session().client('kinesis')\n"
        "d = boto3.client(name)\n"
        "e = requests.Session().get('x')\n"
    )
    assert aws_services_created_in(source) == ["ec2", "dynamodb", "kinesis", None]


@pytest.mark.parametrize(
    ("name", "shipped"),
    [
        ("botocore/data/dynamodb/2012-08-10/service-2.json.gz", True),
        ("botocore/data/sqs/2012-11-05/endpoint-rule-set-1.json.gz", True),
        ("botocore/data/endpoints.json", True),
        ("botocore/data/_retry.json", True),
        ("botocore/data/ec2/2016-11-15/service-2.json.gz", False),
        ("botocore/data/dynamodbstreams/2012-08-10/service-2.json.gz", False),
        ("botocore/client.py", True),
        ("aws_lambda_powertools/logging/logger.py", True),
        ("aws_lambda_powertools/event_handler/api_gateway.py", False),
        ("stripe/_payment_intent.py", True),
        ("stripe/params/_refund_create_params.py", False),
        ("pydantic/v1/main.py", False),
        ("chalicelib/__pycache__/settings.cpython-311.pyc", False),
        ("chalicelib/settings.py", True),
        ("aws_xray_sdk/core/recorder.py", True),
        ("aws_xray_sdk/ext/botocore/patch.py", True),
        ("aws_xray_sdk/ext/httplib/patch.py", True),
        ("aws_xray_sdk/ext/resources/aws_para_whitelist.json", True),
        ("aws_xray_sdk/ext/django/middleware.py", False),
        ("aws_xray_sdk/ext/sqlalchemy/query.py", False),
        ("wrapt/_wrappers.cpython-311-x86_64-linux-gnu.so", True),
        ("wrapt/_wrappers.c", False),
        ("botocore-1.44.8.dist-info/RECORD", False),
        ("botocore-1.44.8.dist-info/METADATA", True),
    ],
)
def test_bundle_keeps_what_runs_and_drops_the_rest(name: str, shipped: bool) -> None:
    assert is_shipped(name) is shipped


def test_slim_rewrites_the_zip_with_only_shipped_entries_and_keeps_modes(tmp_path: Path) -> None:
    bundle = tmp_path / "deployment.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_STORED) as target:
        for name in (
            "botocore/data/sqs/2012-11-05/service-2.json.gz",
            "botocore/data/ec2/2016-11-15/service-2.json.gz",
            "app.py",
        ):
            target.writestr(name, "x" * 4000)
        executable = zipfile.ZipInfo("cryptography/_rust.abi3.so")
        executable.external_attr = 0o755 << 16
        target.writestr(executable, b"\0" * 4000)

    report = slim(bundle)

    with zipfile.ZipFile(bundle) as result:
        names = sorted(result.namelist())
        mode = result.getinfo("cryptography/_rust.abi3.so").external_attr >> 16
    assert names == [
        "app.py",
        "botocore/data/sqs/2012-11-05/service-2.json.gz",
        "cryptography/_rust.abi3.so",
    ]
    assert mode == 0o755
    assert report.after_bytes < report.before_bytes
    assert {name for name, _ in report.largest} == {"app.py", "botocore", "cryptography"}
