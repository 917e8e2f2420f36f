"""The production package: ``chalice package --merge-template`` and a cfn-lint check.

    python -m infra.package --stage dev --out build/package [--lint]

writes ``<out>/sam.json`` and ``<out>/deployment.zip``, ready for
``aws cloudformation package`` / ``deploy`` (optional parameter ``PublicApiUrl``). With ``--lint``
it also checks the plain CloudFormation that SAM's transform makes of it
(``<out>/cloudformation.json``) and that the slimmed ``deployment.zip`` imports and creates its
AWS clients (``infra/lambda_bundle.py``). ``<out>/web/<app>/config.json`` shows each web app's
config with placeholders for the stack's outputs; ``make publish-web`` fills them in after a
deploy (``infra/web_config.py``).

The stateful resources are defined once, in ``infra/resources.yaml``, which also deploys on
its own and is what the local stack creates. What only makes sense next to Chalice's own
resources is generated here, into ``build/merge-template-<stage>.json``, from Chalice's
template for the same app and stage (so handlers added later are picked up without edits):

* every function gets the resources' names through SAM ``Globals`` environment variables,
  as listed in the template's ``Metadata.AppEnvironment``;
* every SQS event source reads the template's queue for the name the handler declared
  (``Metadata.SqsEventSources``) and reports partial batch failures
  (``FunctionResponseTypes: [ReportBatchItemFailures]``);
* every SNS subscription subscribes to the template's topic for the name the handler
  declared (``production.SNS_EVENT_SOURCES``: ``email-feedback`` is SES's feedback topic),
  and its function, invoked asynchronously, sends what still fails after two retries to its
  on-failure queue (``EventInvokeConfig``, ``production.SNS_FAILURE_QUEUES``);
* every DynamoDB stream event source reads the table's stream from the start, bisects a
  failing batch, retries a bounded number of times, then sends the batch's metadata to
  ``StreamFailureQueue``, so one bad record cannot block its shard;
* the REST API answers its own errors (authorizer 401/403, unknown route, 413, throttling)
  in our error shape, and the stage is throttled;
* the Athena catalogue over the report exports (a Glue database and a table per report and
  format) is generated from the declared report schemas (``infra/report_catalog.py``);
* what exists only in AWS — Cognito, log retention, SES feedback, the dashboard, alarms and
  the cost budget — comes from ``infra/production.py``; the authorizer's issuer and client
  ids are read from its Cognito resources;
* every function gets ``CODE_VERSION``: $CODE_VERSION if set, else the git commit packaged
  (recorded in report manifests).

IAM, a deliberate choice: ``.chalice/policy-<stage>.json`` is the one place permissions are
written. Resources have fixed, stage-scoped names (``orderdesk-<stage>-...``), so the policy
files name them exactly, leaving only region and account as wildcards; here every such ARN
in Chalice's roles is pinned to the stack's own ``${AWS::Region}`` and ``${AWS::AccountId}``
(``pin_policy_to_stack``). Functions get fixed names too (as ``chalice deploy`` names them),
so their log groups can be named in the policy.

Gateway responses are the table the local gateway serves (``infra/local/gateway.py``),
written into Chalice's API definition as ``x-amazon-apigateway-gateway-responses`` rather
than as separate ``AWS::ApiGateway::GatewayResponse`` resources: the definition is what each
SAM deployment snapshots, while separate resources are outside SAM's deployment and are
dropped when the definition is redeployed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import lambda_bundle, production, web_config
from infra.local.gateway import swagger_gateway_responses
from infra.local.provision import TEMPLATE_PATH as RESOURCES_TEMPLATE
from infra.local.provision import load_template
from infra.report_catalog import glue_resources

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHALICE_TEMPLATE_FILE = "sam.json"
DEPLOYMENT_ZIP = "deployment.zip"
CLOUDFORMATION_FILE = "cloudformation.json"
# What `aws cloudformation package` would put in place of the local zip before SAM translates.
PLACEHOLDER_CODE_URI = "s3://orderdesk-artifacts/deployment.zip"


@dataclass(frozen=True)
class Throttling:
    rate_per_second: int
    burst: int


THROTTLING_BY_STAGE = {"dev": Throttling(50, 100), "prod": Throttling(500, 1000)}
DEFAULT_THROTTLING = Throttling(50, 100)

STREAM_MAX_RETRY_ATTEMPTS = 5
# A new deployment must not skip outbox records written before its stream mapping existed.
STREAM_STARTING_POSITION = "TRIM_HORIZON"

# Variables wired from deployment parameters unless the stage's config already sets them.
PARAMETER_ENVIRONMENT = {
    "PUBLIC_API_URL": (
        "PublicApiUrl",
        "The API's public base URL (its custom domain, https://...), where Alipay and WeChat "
        "Pay notifications are sent; empty: derived from each request (domain and stage)",
    ),
}
WEBSOCKET_API = "WebsocketAPI"  # Chalice's logical id for the app's WebSocket API
# Parameters that may be left empty (the rest must be given at deploy time).
OPTIONAL_PARAMETERS = frozenset({"PublicApiUrl"})
PARAMETER_PATTERNS = {
    # The web apps' CSP appends "/" to allow every path under it: no trailing slash here.
    "PublicApiUrl": {
        "AllowedPattern": r"^$|^https://[^/\s]+(/[^\s]*[^/\s])?$",
        "ConstraintDescription": "empty, or an https URL without a trailing slash",
    },
}


class PackagingError(RuntimeError):
    pass


def package(
    stage: str,
    out_dir: Path,
    *,
    project_dir: Path = PROJECT_ROOT,
    resources_path: Path = RESOURCES_TEMPLATE,
) -> Path:
    """Package the app in ``project_dir`` for ``stage`` into ``out_dir``; return sam.json."""
    project_dir = project_dir.resolve()
    out_dir = out_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="chalice-template-") as scratch:
        chalice_template = _run_chalice_package(project_dir, stage, Path(scratch))
    merge = build_merge_template(
        load_template(resources_path),
        chalice_template,
        stage,
        code_version=packaged_code_version(project_dir),
    )
    merge_path = project_dir / "build" / f"merge-template-{stage}.json"
    merge_path.parent.mkdir(parents=True, exist_ok=True)
    merge_path.write_text(json.dumps(merge, indent=2, sort_keys=True), encoding="utf-8")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    packaged = _run_chalice_package(project_dir, stage, out_dir, merge_template=merge_path)
    _verify_event_sources_patched(merge, packaged)
    lambda_bundle.slim(out_dir / DEPLOYMENT_ZIP)
    return out_dir / CHALICE_TEMPLATE_FILE


def build_merge_template(
    resources: Mapping[str, Any],
    chalice_template: Mapping[str, Any],
    stage: str,
    *,
    code_version: str = "dev",
) -> dict[str, Any]:
    """The template to merge into Chalice's: the resources plus patches to Chalice's own."""
    merge: dict[str, Any] = copy.deepcopy(dict(resources))
    catalog = glue_resources()
    duplicated = sorted(set(merge["Resources"]) & set(catalog))
    if duplicated:
        raise PackagingError(f"resources.yaml defines generated report catalogue ids: {duplicated}")
    merge["Resources"].update(catalog)
    chalice_resources: Mapping[str, Any] = chalice_template.get("Resources", {})
    clashes = sorted(set(merge["Resources"]) & set(chalice_resources))
    if clashes:
        raise PackagingError(f"logical ids used by both Chalice and resources.yaml: {clashes}")

    # A package is built for one stage: its policies and env name that stage's resources.
    # (Not narrowed with AllowedValues: that would leave the IsProd condition one branch.)
    stage_parameter = merge["Parameters"]["Stage"]
    stage_parameter["Default"] = stage
    stage_parameter["Description"] = (
        f"Leave at {stage}: this package's IAM policies and STAGE variable are for {stage}."
    )

    chalice_env = _environment_set_by_chalice(chalice_resources)
    merge["Globals"] = {
        "Function": {"Environment": {"Variables": _globals_environment(merge, chalice_env)}}
    }
    if "CODE_VERSION" not in chalice_env:
        merge["Globals"]["Function"]["Environment"]["Variables"]["CODE_VERSION"] = code_version
    for variable, (parameter, description) in PARAMETER_ENVIRONMENT.items():
        if variable not in chalice_env:
            merge["Parameters"][parameter] = {"Type": "String", "Description": description}
            if parameter in OPTIONAL_PARAMETERS:
                merge["Parameters"][parameter]["Default"] = ""
            if parameter in PARAMETER_PATTERNS:
                merge["Parameters"][parameter].update(PARAMETER_PATTERNS[parameter])

    throttling = THROTTLING_BY_STAGE.get(stage, DEFAULT_THROTTLING)
    merge["Parameters"]["ApiThrottlingRateLimit"] = {
        "Type": "Number",
        "Default": throttling.rate_per_second,
        "Description": "Steady-state requests per second across the API stage.",
    }
    merge["Parameters"]["ApiThrottlingBurstLimit"] = {
        "Type": "Number",
        "Default": throttling.burst,
        "Description": "Burst bucket size for the API stage.",
    }

    metadata = resources["Metadata"]
    app_name = _app_name(chalice_resources)
    function_names = {
        logical_id: _function_name(resource["Properties"]["Handler"], app_name, stage)
        for logical_id, resource in chalice_resources.items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }
    queues = {logical_id: name for name, logical_id in metadata["SqsEventSources"].items()}
    socket = WEBSOCKET_API in chalice_resources
    if socket:
        merge["Globals"]["Function"]["Environment"]["Variables"].update(
            copy.deepcopy(production.SOCKET_ENVIRONMENT)
        )
    extra = production.production_template(
        function_names,
        queues,
        api_function=_function_name("app.app", app_name, stage),
        socket=socket,
    )
    for section in ("Parameters", "Conditions", "Resources", "Outputs"):
        taken = set(merge.get(section, {})) | set(chalice_template.get(section, {}))
        if clashes := sorted(taken & set(extra[section])):
            raise PackagingError(f"{section} defined twice (infra/production.py): {clashes}")
        merge.setdefault(section, {}).update(copy.deepcopy(extra[section]))
    for logical_id, resource in chalice_resources.items():
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function":
            merge["Resources"][logical_id] = {
                "Properties": _function_patch(resource, app_name, stage, metadata)
            }
        elif kind == "AWS::IAM::Role":
            merge["Resources"][logical_id] = {"Properties": _role_patch(resource)}
        elif kind == "AWS::Serverless::Api":
            merge["Resources"][logical_id] = {
                "Properties": _api_patch(_single_cors_origin(chalice_resources))
            }
    return merge


def packaged_code_version(project_dir: Path) -> str:
    """$CODE_VERSION, else the commit checked out in ``project_dir``, else "dev"."""
    if os.environ.get("CODE_VERSION"):
        return os.environ["CODE_VERSION"]
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=project_dir,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "dev"
    commit = completed.stdout.strip()
    return commit if completed.returncode == 0 and commit else "dev"


def _verify_event_sources_patched(merge: Mapping[str, Any], packaged: Mapping[str, Any]) -> None:
    """Fail if Chalice's merge left an event source property other than what was asked.

    The merge joins dicts key by key, so a patch that changes an intrinsic's kind would
    end up as a dict with two intrinsics rather than a replacement."""
    for logical_id, patch in merge["Resources"].items():
        events = patch.get("Properties", {}).get("Events", {})
        for event_id, event_patch in events.items():
            merged = packaged["Resources"][logical_id]["Properties"]["Events"][event_id]
            for key, wanted in event_patch["Properties"].items():
                if merged["Properties"].get(key) != wanted:
                    raise PackagingError(
                        f"{logical_id}.{event_id}.{key} merged as "
                        f"{merged['Properties'].get(key)!r}, not {wanted!r}"
                    )


def pin_policy_to_stack(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with ``arn:aws:<service>:*:*:...`` resources pinned to this stack's
    partition, region and account. ``NotResource`` is left alone: pinning an exclusion
    would widen what it allows."""
    pinned = copy.deepcopy(dict(document))
    for statement in pinned.get("Statement", []):
        if "Resource" in statement:
            resources = statement["Resource"]
            if isinstance(resources, list):
                statement["Resource"] = [_pin_arn(arn) for arn in resources]
            else:
                statement["Resource"] = _pin_arn(resources)
    return pinned


_REGIONAL_ARN = re.compile(r"^arn:aws:([a-z0-9-]+):\*:\*:(.*)$")
_GLOBAL_ARN = re.compile(r"^arn:aws:([a-z0-9-]+):::(.*)$")


def _pin_arn(arn: Any) -> Any:
    if not isinstance(arn, str):
        return arn
    if match := _REGIONAL_ARN.match(arn):
        service, rest = match.groups()
        scope = "${AWS::Region}:${AWS::AccountId}"
        return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:{scope}:{rest}"}
    if match := _GLOBAL_ARN.match(arn):
        service, rest = match.groups()
        return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:::{rest}"}
    return arn


def _environment_set_by_chalice(chalice_resources: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for resource in chalice_resources.values():
        if resource.get("Type") == "AWS::Serverless::Function":
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            names.update(variables)
    return names


def _globals_environment(merge: Mapping[str, Any], chalice_env: set[str]) -> dict[str, Any]:
    wiring: Mapping[str, str] = merge["Metadata"]["AppEnvironment"]
    overridden = sorted(set(wiring) & chalice_env)
    if overridden:
        # A function-level value would silently win over the template's resource.
        raise PackagingError(
            f".chalice/config.json sets {overridden}; these come from infra/resources.yaml"
        )
    variables = {
        variable: copy.deepcopy(merge["Outputs"][output]["Value"])
        for variable, output in wiring.items()
    }
    for variable, value in production.APP_ENVIRONMENT.items():
        if variable not in chalice_env:
            variables[variable] = copy.deepcopy(value)
    for variable, (parameter, _description) in PARAMETER_ENVIRONMENT.items():
        if variable not in chalice_env:
            variables[variable] = {"Ref": parameter}
    return variables


def _app_name(chalice_resources: Mapping[str, Any]) -> str:
    for resource in chalice_resources.values():
        tag = resource.get("Properties", {}).get("Tags", {}).get("aws-chalice", "")
        fields = dict(part.split("=", 1) for part in tag.split(":") if "=" in part)
        if "app" in fields:
            return fields["app"]
    raise PackagingError("Chalice's template names no app (aws-chalice tag missing)")


def _function_name(handler: str, app_name: str, stage: str) -> str:
    # The names `chalice deploy` gives: the API handler (Handler "app.app", the Chalice
    # object) is <app>-<stage>; every other function adds its Python function's name.
    if handler == "app.app":
        name = f"{app_name}-{stage}"
    else:
        name = f"{app_name}-{stage}-{handler.rsplit('.', 1)[1]}"
    if len(name) > 64:
        raise PackagingError(f"function name {name!r} exceeds Lambda's 64 characters")
    return name


def _function_patch(
    function: Mapping[str, Any], app_name: str, stage: str, metadata: Mapping[str, Any]
) -> dict[str, Any]:
    properties = function["Properties"]
    patch: dict[str, Any] = {"FunctionName": _function_name(properties["Handler"], app_name, stage)}
    events: dict[str, Any] = {}
    for event_id, event in properties.get("Events", {}).items():
        if event["Type"] == "SQS":
            events[event_id] = {"Properties": _sqs_event_patch(event_id, event, metadata)}
        elif event["Type"] == "DynamoDB":
            events[event_id] = {"Properties": _stream_event_patch(metadata)}
        elif event["Type"] == "SNS":
            events[event_id] = {"Properties": _sns_event_patch(event_id, event)}
            patch["EventInvokeConfig"] = _sns_failure_destination(event)
    if events:
        patch["Events"] = events
    return patch


def _sqs_event_patch(
    event_id: str, event: Mapping[str, Any], metadata: Mapping[str, Any]
) -> dict[str, Any]:
    queue_name = _declared_queue_name(event["Properties"]["Queue"])
    queues: Mapping[str, str] = metadata["SqsEventSources"]
    if queue_name not in queues:
        raise PackagingError(
            f"{event_id} reads queue {queue_name!r}; infra/resources.yaml defines "
            f"{sorted(queues)} (Metadata.SqsEventSources)"
        )
    return {
        # Fn::Sub, not Fn::GetAtt: Chalice's merge joins dicts key by key, so a GetAtt would
        # sit beside Chalice's own Fn::Sub instead of replacing it.
        "Queue": {"Fn::Sub": f"${{{queues[queue_name]}.Arn}}"},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }


def _sns_event_patch(event_id: str, event: Mapping[str, Any]) -> dict[str, Any]:
    topic = event["Properties"]["Topic"]
    # Chalice writes a topic name as Fn::Sub "arn:...:<name>" (the same form as a queue's).
    topic_name = _declared_queue_name(topic)
    topics = production.SNS_EVENT_SOURCES
    if topic_name not in topics:
        raise PackagingError(
            f"{event_id} subscribes to topic {topic_name!r}; infra/production.py defines "
            f"{sorted(topics)} (SNS_EVENT_SOURCES)"
        )
    # Fn::Sub for the same reason as a queue's: a Ref would sit beside Chalice's Fn::Sub.
    return {"Topic": {"Fn::Sub": f"${{{topics[topic_name]}}}"}}


def _sns_failure_destination(event: Mapping[str, Any]) -> dict[str, Any]:
    topic_name = _declared_queue_name(event["Properties"]["Topic"])
    queue = production.SNS_FAILURE_QUEUES.get(topic_name)
    if queue is None:
        raise PackagingError(
            f"topic {topic_name!r} has no on-failure queue in infra/production.py "
            "(SNS_FAILURE_QUEUES): its failed events would be lost"
        )
    return {
        "MaximumRetryAttempts": production.SNS_MAX_RETRY_ATTEMPTS,
        "DestinationConfig": {
            "OnFailure": {"Type": "SQS", "Destination": {"Fn::GetAtt": [queue, "Arn"]}}
        },
    }


def _declared_queue_name(queue: Any) -> str:
    # Chalice writes a queue name as Fn::Sub "arn:...:<name>" and a queue_arn as a string.
    if isinstance(queue, dict) and "Fn::Sub" in queue:
        queue = queue["Fn::Sub"]
        if isinstance(queue, list):
            queue = queue[0]
    if not isinstance(queue, str):
        raise PackagingError(f"unexpected SQS queue reference in Chalice's template: {queue!r}")
    return queue.rsplit(":", 1)[-1]


def _stream_event_patch(metadata: Mapping[str, Any]) -> dict[str, Any]:
    stream_source = metadata["DynamoDBEventSource"]
    return {
        # Chalice writes the stream ARN the handler declared as a plain string.
        "Stream": {"Fn::GetAtt": [stream_source["Table"], "StreamArn"]},
        "StartingPosition": STREAM_STARTING_POSITION,
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": STREAM_MAX_RETRY_ATTEMPTS,
        "DestinationConfig": {
            "OnFailure": {
                "Type": "SQS",
                "Destination": {"Fn::GetAtt": [stream_source["OnFailureQueue"], "Arn"]},
            }
        },
    }


def _role_patch(role: Mapping[str, Any]) -> dict[str, Any]:
    # Lists are replaced, not merged, by Chalice's merge: restate every policy, pinned.
    policies = role["Properties"].get("Policies", [])
    return {
        "Policies": [
            {**policy, "PolicyDocument": pin_policy_to_stack(policy["PolicyDocument"])}
            for policy in policies
        ]
    }


def _single_cors_origin(chalice_resources: Mapping[str, Any]) -> str | None:
    """The stage's one allowed browser origin, if it has exactly one.

    Gateway responses are static, so they cannot echo one origin of several as the app
    does; with a single origin they can name it, and a storefront can read a 401."""
    origins: set[str] = set()
    for resource in chalice_resources.values():
        if resource.get("Type") == "AWS::Serverless::Function":
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            value = variables.get("CORS_ALLOW_ORIGINS", "")
            origins.update(part.strip() for part in value.split(",") if part.strip())
    return next(iter(origins)) if len(origins) == 1 else None


def _api_patch(cors_origin: str | None) -> dict[str, Any]:
    responses = swagger_gateway_responses(allow_origin=cors_origin)
    for fallback in ("DEFAULT_4XX", "DEFAULT_5XX"):
        # A status on a fallback type replaces the status of every type it stands in for
        # (429, 415, 504 ... would all become one code), so the fallbacks keep API Gateway's.
        responses.get(fallback, {}).pop("statusCode", None)
    return {
        "DefinitionBody": {"x-amazon-apigateway-gateway-responses": responses},
        # API Gateway's part of each request joins the function's X-Ray trace.
        "TracingEnabled": True,
        "MethodSettings": [
            {
                "ResourcePath": "/*",
                "HttpMethod": "*",
                "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
                "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
            }
        ],
    }


def _chalice_executable() -> Path:
    beside_python = Path(sys.executable).with_name("chalice")
    return beside_python if beside_python.exists() else PROJECT_ROOT / ".venv" / "bin" / "chalice"


def _run_chalice_package(
    project_dir: Path, stage: str, out_dir: Path, *, merge_template: Path | None = None
) -> dict[str, Any]:
    command = [str(_chalice_executable()), "--project-dir", str(project_dir), "package"]
    command += ["--stage", stage]
    if merge_template is not None:
        command += ["--merge-template", str(merge_template)]
    command.append(str(out_dir))
    # Chalice needs a region to name ARNs; the template itself is region-neutral.
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    completed = subprocess.run(
        command, cwd=project_dir, env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        output = completed.stdout + completed.stderr
        raise PackagingError(f"chalice package failed ({completed.returncode}):\n{output}")
    return json.loads((out_dir / CHALICE_TEMPLATE_FILE).read_text(encoding="utf-8"))


def lint(template_path: Path) -> list[str]:
    """cfn-lint's findings for the template at its default settings (errors and warnings)."""
    from cfnlint.api import lint_file

    return [str(match) for match in lint_file(Path(template_path))]


def translate_to_cloudformation(sam_template: Mapping[str, Any]) -> dict[str, Any]:
    """The plain CloudFormation that the SAM transform makes of ``sam_template`` on deploy.

    Local ``CodeUri``s are replaced by an S3 URI first, as ``aws cloudformation package``
    does. The roles are Chalice's own, so no managed policy needs looking up."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(dict(sam_template))
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in properties:
            properties["CodeUri"] = PLACEHOLDER_CODE_URI
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name="us-east-1"))
    return translator.translate(
        template,
        parameter_values={"AWS::AccountId": "123456789012"},
        get_managed_policy_map=dict,
    )


def lint_template(template: Mapping[str, Any], path: Path) -> list[str]:
    path.write_text(json.dumps(template, indent=2), encoding="utf-8")
    return lint(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="chalice package with the merged resources")
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "package")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_ROOT)
    parser.add_argument(
        "--lint", action="store_true", help="run cfn-lint on resources.yaml and the result"
    )
    args = parser.parse_args(argv)
    try:
        template = package(args.stage, args.out, project_dir=args.project_dir)
    except PackagingError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"packaged {args.stage}: {template}")
    configs = web_config.write_configs(args.out / "web", web_config.placeholder_configs())
    print(f"config.json shape (filled by make publish-web): {', '.join(map(str, configs))}")
    if not args.lint:
        return 0
    cloudformation = translate_to_cloudformation(json.loads(template.read_text(encoding="utf-8")))
    findings = (
        lint(RESOURCES_TEMPLATE)
        + lint(template)
        + lint_template(cloudformation, args.out / CLOUDFORMATION_FILE)
    )
    lambda_bundle.verify(args.out / DEPLOYMENT_ZIP)
    zipped = (args.out / DEPLOYMENT_ZIP).stat().st_size
    print(f"deployment.zip: {zipped / 1e6:.1f} MB, imports and creates its clients")
    for finding in findings:
        print(finding, file=sys.stderr)
    print("cfn-lint: clean" if not findings else f"cfn-lint: {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
