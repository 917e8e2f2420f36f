"""Create the stateful resources in the local AWS emulator from ``infra/resources.yaml``.

The emulator's own CloudFormation (moto's ``CreateStack``) deploys the very template that
production deploys, so the table, its indexes and stream, the queues and their redrive
policies, the bucket's encryption and the topic come from one definition. moto's
CloudFormation ignores a few properties; ``_apply_properties_moto_ignores`` applies exactly
those, read from the same template (see its docstring for the list and the reasons).

``provision`` is idempotent: run again against the same emulator, it finds the stack and
returns the same environment.

    python -m infra.local.provision --endpoint-url http://127.0.0.1:5000 [--stage local]

prints the environment as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError

TEMPLATE_PATH = Path(__file__).resolve().parents[1] / "resources.yaml"
APP_NAME = "orderdesk"
DEFAULT_REGION = "us-east-1"
# Customer notifications: the local sender address (verified in the emulator's SES) and one
# SNS platform application per push platform: env var -> (name suffix, SNS platform).
LOCAL_NOTIFICATIONS_SENDER = "orders@orderdesk.local"
PUSH_APPLICATIONS = {
    "PUSH_APNS_APPLICATION_ARN": ("apns", "APNS_SANDBOX"),
    "PUSH_FCM_APPLICATION_ARN": ("fcm", "GCM"),
}
_READY_STATES = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
_STACK_TIMEOUT_SECONDS = 60.0


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as a dict (it uses long-form intrinsics, so plain YAML reads it)."""
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def stack_name(stage: str) -> str:
    return f"{APP_NAME}-{stage}"


def provision(
    endpoint_url: str,
    stage: str = "local",
    *,
    parameters: Mapping[str, str] | None = None,
    region: str | None = None,
) -> dict[str, str]:
    """Create (or find) the stack for ``stage`` in the emulator; return the app's env vars.

    ``parameters`` overrides template parameters other than ``Stage`` (e.g. a shorter
    ``QueueVisibilityTimeoutSeconds`` for tests); defaults come from the template.
    """
    template_text = TEMPLATE_PATH.read_text(encoding="utf-8")
    template = yaml.safe_load(template_text)
    clients = _Clients(endpoint_url, region or os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION))
    name = stack_name(stage)

    stack = _describe_stack(clients.cloudformation, name)
    if stack is None:
        stack_parameters = {**(parameters or {}), "Stage": stage}
        clients.cloudformation.create_stack(
            StackName=name,
            TemplateBody=template_text,
            Parameters=[
                {"ParameterKey": key, "ParameterValue": str(value)}
                for key, value in stack_parameters.items()
            ],
        )
        stack = _wait_until_ready(clients.cloudformation, name)
    elif stack["StackStatus"] not in _READY_STATES:
        raise RuntimeError(f"stack {name} is {stack['StackStatus']}; restart the emulator")

    physical_ids = _physical_ids(clients.cloudformation, name)
    # Runs on every call: each step checks first, so a run interrupted after CreateStack
    # is completed by the next one.
    _apply_properties_moto_ignores(template, physical_ids, clients)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    env = _environment(template, outputs, clients, stage)
    env.update(_provision_notifications(clients, stage))
    return env


def queue_urls_by_logical_name(env: Mapping[str, str]) -> dict[str, str]:
    """The queue name a handler declares in ``@app.on_sqs_message(queue=...)`` -> its URL."""
    sources: dict[str, str] = load_template()["Metadata"]["SqsEventSources"]
    return {queue_name: env[_queue_env_var(queue_name)] for queue_name in sources}


def _queue_env_var(queue_name: str) -> str:
    return f"{queue_name.upper()}_QUEUE_URL"


class _Clients:
    """boto3 clients for the emulator (fake credentials unless some are already set)."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "local"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
            region_name=region,
        )
        self.cloudformation = session.client("cloudformation", endpoint_url=endpoint_url)
        self.dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
        self.sqs = session.client("sqs", endpoint_url=endpoint_url)
        self.s3 = session.client("s3", endpoint_url=endpoint_url)
        self.ses = session.client("ses", endpoint_url=endpoint_url)
        self.sns = session.client("sns", endpoint_url=endpoint_url)


def _describe_stack(cloudformation: Any, name: str) -> dict[str, Any] | None:
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    live = [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"]
    return live[0] if live else None


def _wait_until_ready(cloudformation: Any, name: str) -> dict[str, Any]:
    # moto creates stacks synchronously; the loop only guards against that changing.
    deadline = time.monotonic() + _STACK_TIMEOUT_SECONDS
    while True:
        stack = _describe_stack(cloudformation, name)
        status = stack["StackStatus"] if stack else "MISSING"
        if status in _READY_STATES:
            return stack  # type: ignore[return-value]
        if not status.endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            raise RuntimeError(f"creating stack {name} ended in {status}")
        time.sleep(0.2)


def _physical_ids(cloudformation: Any, name: str) -> dict[str, str]:
    resources = cloudformation.describe_stack_resources(StackName=name)["StackResources"]
    # moto lists resource types it does not support without a logical id; skip those.
    return {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in resources
        if "LogicalResourceId" in r and "PhysicalResourceId" in r
    }


def _apply_properties_moto_ignores(
    template: Mapping[str, Any], physical_ids: Mapping[str, str], clients: _Clients
) -> None:
    """Apply the template properties that moto 5.2's CloudFormation does not act on.

    Verified against moto 5.2.5 (tests/integration/test_provision.py checks the result):
    it creates the GSIs, stream, billing mode, queue redrive policies, SSE-SQS and the
    bucket's encryption itself, but ignores these, which are applied here from the
    template's own property values:

    * AWS::DynamoDB::Table ``TimeToLiveSpecification`` and
      ``PointInTimeRecoverySpecification``;
    * AWS::S3::Bucket ``PublicAccessBlockConfiguration`` and ``VersioningConfiguration``.

    Deliberately not applied, as they have no local effect: the table's
    ``SSESpecification`` (moto reads the API's ``Enabled`` key, not CloudFormation's
    ``SSEEnabled``, and its UpdateTable cannot set it), the bucket's lifecycle and
    ownership rules, ``AWS::S3::BucketPolicy`` (its deny of non-TLS requests would reject
    every request to the plain-HTTP emulator) and ``AWS::CloudWatch::Alarm`` (moto's
    CloudFormation skips both resource types with a warning).
    """
    for logical_id, resource in template["Resources"].items():
        physical_id = physical_ids.get(logical_id)
        properties = resource.get("Properties", {})
        if physical_id is None:
            continue
        if resource["Type"] == "AWS::DynamoDB::Table":
            _apply_table_properties(clients.dynamodb, physical_id, properties)
        elif resource["Type"] == "AWS::S3::Bucket":
            _apply_bucket_properties(clients.s3, physical_id, properties)


def _apply_table_properties(dynamodb: Any, table_name: str, properties: Mapping[str, Any]) -> None:
    ttl = properties.get("TimeToLiveSpecification")
    if ttl and _literal(ttl)["Enabled"]:
        current = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in {"ENABLED", "ENABLING"}:
            dynamodb.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
    recovery = properties.get("PointInTimeRecoverySpecification")
    if recovery and _literal(recovery).get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=table_name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )


def _apply_bucket_properties(s3: Any, bucket: str, properties: Mapping[str, Any]) -> None:
    public_access = properties.get("PublicAccessBlockConfiguration")
    if public_access:
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=dict(_literal(public_access))
        )
    versioning = properties.get("VersioningConfiguration")
    if versioning:
        s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": _literal(versioning)["Status"]}
        )


def _literal(value: Any) -> Any:
    """``value`` unchanged, or an error if it holds an intrinsic this module cannot resolve."""
    text = json.dumps(value)
    if '"Ref"' in text or '"Fn::' in text:
        raise ValueError(f"provision applies only literal property values, got {text}")
    return value


def _provision_notifications(clients: _Clients, stage: str) -> dict[str, str]:
    """What customer notifications need that CloudFormation cannot create: a verified SES
    sender and the SNS platform applications. In AWS these hold the APNs certificate and
    the FCM key, so they are set up once by hand and passed to the app as settings; the
    emulator keeps applications without checking credentials, so none are given here.

    The SES configuration set every email is sent with is created here too: in AWS it comes
    from the template (``infra/production.py``), whose SNS event destination the emulator
    cannot honour, but SES refuses a send naming a set that does not exist, and so does the
    emulator (``infra/local/ses_rules.py``)."""
    clients.ses.verify_email_identity(EmailAddress=LOCAL_NOTIFICATIONS_SENDER)
    configuration_set = f"{APP_NAME}-{stage}"
    listed = clients.ses.list_configuration_sets().get("ConfigurationSets", [])
    if configuration_set not in {entry["Name"] for entry in listed}:
        clients.ses.create_configuration_set(ConfigurationSet={"Name": configuration_set})
    env = {
        "NOTIFICATIONS_FROM_EMAIL": LOCAL_NOTIFICATIONS_SENDER,
        "SES_CONFIGURATION_SET": configuration_set,
    }
    existing: dict[str, str] = {}
    for page in clients.sns.get_paginator("list_platform_applications").paginate():
        for application in page.get("PlatformApplications", []):
            arn = application["PlatformApplicationArn"]
            existing[arn.rsplit("/", 1)[-1]] = arn
    for variable, (suffix, platform) in PUSH_APPLICATIONS.items():
        name = f"{APP_NAME}-{stage}-{suffix}"
        if name not in existing:
            created = clients.sns.create_platform_application(
                Name=name, Platform=platform, Attributes={}
            )
            existing[name] = created["PlatformApplicationArn"]
        env[variable] = existing[name]
    return env


def _environment(
    template: Mapping[str, Any], outputs: Mapping[str, str], clients: _Clients, stage: str
) -> dict[str, str]:
    env = {"STAGE": stage}
    for variable, output_name in template["Metadata"]["AppEnvironment"].items():
        value = outputs[output_name]
        if _is_queue_ref(template, output_name):
            # CloudFormation's Ref gives the AWS-shaped URL; use the one the emulator serves.
            value = clients.sqs.get_queue_url(QueueName=value.rsplit("/", 1)[-1])["QueueUrl"]
        env[variable] = value
    return env


def _is_queue_ref(template: Mapping[str, Any], output_name: str) -> bool:
    expression = template["Outputs"][output_name]["Value"]
    if not isinstance(expression, dict) or set(expression) != {"Ref"}:
        return False
    resource = template["Resources"].get(expression["Ref"], {})
    return resource.get("Type") == "AWS::SQS::Queue"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--stage", default="local")
    args = parser.parse_args(argv)
    print(json.dumps(provision(args.endpoint_url, args.stage), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
