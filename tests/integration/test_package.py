"""The production package: Chalice's template merged with infra/, clean under cfn-lint.

Runs the real ``python -m infra.package`` path (``chalice package`` twice: once to read
Chalice's template, once to merge) for a copy of this project and for a small app with the
kinds of event handlers later issues add.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.local.provision import load_template
from infra.package import (
    PROJECT_ROOT,
    RESOURCES_TEMPLATE,
    PackagingError,
    build_merge_template,
    lint,
    lint_template,
    package,
    translate_to_cloudformation,
)

STAGE = "dev"
CHALICE_CONFIG = json.loads((Path(__file__).parents[2] / ".chalice" / "config.json").read_text())
# Actions that have no resource-level scope in IAM, so "*" is their only possible resource.
UNSCOPED_ACTIONS = {"dynamodb:ListStreams", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
ACCOUNT, REGION = "123456789012", "us-east-1"

EVENT_APP = """
from chalice import Chalice, Rate

app = Chalice(app_name="orderdesk")


@app.route("/health")
def health():
    return {"status": "ok"}


@app.on_sqs_message(queue="fulfilment", batch_size=10)
def fulfil_orders(event):
    return {"batchItemFailures": []}


@app.on_dynamodb_record(stream_arn="arn:aws:dynamodb:us-east-1:1:table/x/stream/placeholder")
def relay_outbox(event):
    return None


@app.schedule(Rate(15, unit=Rate.MINUTES))
def check_low_stock(event):
    return None
"""


@dataclass
class Packaged:
    path: Path
    template: dict[str, Any]

    @property
    def resources(self) -> dict[str, Any]:
        return self.template["Resources"]

    def functions(self) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource["Properties"]
            for logical_id, resource in self.resources.items()
            if resource["Type"] == "AWS::Serverless::Function"
        }

    def events_of_type(self, kind: str) -> list[dict[str, Any]]:
        return [
            event["Properties"]
            for function in self.functions().values()
            for event in function.get("Events", {}).values()
            if event["Type"] == kind
        ]


def _package(project_dir: Path, out_dir: Path, stage: str = STAGE) -> Packaged:
    path = package(stage, out_dir, project_dir=project_dir)
    return Packaged(path, json.loads(path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module", params=["dev", "prod"])
def project_package(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Packaged:
    """This project's app and stage config, packaged from a copy without requirements.

    The template does not depend on the dependency set, while building Lambda wheels for it
    takes half a minute and leaves a 26 MB zip in .chalice/deployments whenever the code
    has changed; `make package` does the full build."""
    project = tmp_path_factory.mktemp("project")
    shutil.copy2(PROJECT_ROOT / "app.py", project / "app.py")
    for package_dir in ("chalicelib", "vendor"):
        if (PROJECT_ROOT / package_dir).is_dir():
            shutil.copytree(
                PROJECT_ROOT / package_dir,
                project / package_dir,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
    _copy_stage_config(project)
    return _package(project, project / "out", stage=request.param)


@pytest.fixture(scope="module")
def event_app_package(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    project = tmp_path_factory.mktemp("event-app")
    (project / "app.py").write_text(textwrap.dedent(EVENT_APP), encoding="utf-8")
    _copy_stage_config(project)
    return _package(project, project / "out")


def _copy_stage_config(project: Path) -> None:
    """The project's .chalice config and policies, and no requirements (a quick build)."""
    (project / ".chalice").mkdir()
    for config in (PROJECT_ROOT / ".chalice").glob("*.json"):
        shutil.copy2(config, project / ".chalice" / config.name)
    (project / "requirements.txt").write_text("", encoding="utf-8")


# --- the project's own package -------------------------------------------------------------


def test_resources_template_alone_is_cfn_lint_clean() -> None:
    assert lint(RESOURCES_TEMPLATE) == []


def test_project_package_is_cfn_lint_clean(project_package: Packaged) -> None:
    assert lint(project_package.path) == []


def test_project_package_translates_to_plain_cloudformation_that_is_cfn_lint_clean(
    project_package: Packaged, tmp_path: Path
) -> None:
    cloudformation = translate_to_cloudformation(project_package.template)

    kinds = {resource["Type"] for resource in cloudformation["Resources"].values()}
    assert "Transform" not in cloudformation
    assert not {kind for kind in kinds if kind.startswith("AWS::Serverless::")}
    assert {"AWS::Lambda::Function", "AWS::ApiGateway::RestApi"} <= kinds
    assert lint_template(cloudformation, tmp_path / "cloudformation.json") == []


def test_project_package_holds_the_stateful_resources(project_package: Packaged) -> None:
    for logical_id, resource in load_template()["Resources"].items():
        assert project_package.resources[logical_id]["Type"] == resource["Type"]


def test_email_feedback_handler_is_subscribed_to_the_topic_only_ses_publishes_to(
    project_package: Packaged,
) -> None:
    handler = project_package.functions()["RecordEmailFeedback"]
    (subscription,) = handler["Events"].values()
    assert subscription["Type"] == "SNS"
    assert subscription["Properties"]["Topic"] == {"Fn::Sub": "${EmailFeedbackTopic}"}
    topic_policy = project_package.resources["EmailFeedbackTopicPolicy"]["Properties"]
    assert topic_policy["Topics"] == [{"Ref": "EmailFeedbackTopic"}]
    (statement,) = topic_policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "ses.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"]["Fn::Sub"].endswith(
        ":configuration-set/orderdesk-${Stage}"
    )
    destination = project_package.resources["EmailFeedbackDestination"]["Properties"]
    assert destination["EventDestination"]["SnsDestination"] == {
        "TopicARN": {"Ref": "EmailFeedbackTopic"}
    }
    environment = project_package.template["Globals"]["Function"]["Environment"]["Variables"]
    assert environment["SES_CONFIGURATION_SET"] == {"Ref": "EmailConfigurationSet"}


def test_email_feedback_that_keeps_failing_goes_to_an_alarmed_queue_not_lost(
    project_package: Packaged,
) -> None:
    handler = project_package.functions()["RecordEmailFeedback"]
    invoke_config = handler["EventInvokeConfig"]
    assert invoke_config["MaximumRetryAttempts"] == 2
    assert invoke_config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["EmailFeedbackFailureQueue", "Arn"]},
    }
    queue = project_package.resources["EmailFeedbackFailureQueue"]["Properties"]
    assert queue["QueueName"] == {"Fn::Sub": "orderdesk-${Stage}-email-feedback-failures"}
    assert queue["MessageRetentionPeriod"] == 1209600
    alarm = project_package.resources["EmailFeedbackFailureQueueAlarm"]["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": ["EmailFeedbackFailureQueue", "QueueName"]
    }
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert alarm["AlarmActions"] == [{"Ref": "AlertsTopic"}]
    # Only the subscribed function gets a destination: the others are not invoked by SNS.
    others = [p for name, p in project_package.functions().items() if name != "RecordEmailFeedback"]
    assert all("EventInvokeConfig" not in props for props in others)

    # SAM adds a destination's permission only to a role it generates; Chalice's role comes
    # from the policy file, which must allow the send.
    cloudformation = translate_to_cloudformation(project_package.template)
    (config,) = [
        resource["Properties"]
        for resource in cloudformation["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventInvokeConfig"
    ]
    assert config["FunctionName"] == {"Ref": "RecordEmailFeedback"}
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["EmailFeedbackFailureQueue", "Arn"]
    }
    stage = project_package.template["Parameters"]["Stage"]["Default"]
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orderdesk-{stage}-email-feedback-failures"
    assert _allows(_policy(stage), "sqs:SendMessage", queue_arn)


def test_gateway_errors_use_our_error_shape(project_package: Packaged) -> None:
    definition = project_package.resources["RestAPI"]["Properties"]["DefinitionBody"]
    responses = definition["x-amazon-apigateway-gateway-responses"]
    expected = {
        "UNAUTHORIZED": ("401", "unauthorized"),
        "ACCESS_DENIED": ("403", "forbidden"),
        "MISSING_AUTHENTICATION_TOKEN": ("404", "not_found"),
        "REQUEST_TOO_LARGE": ("413", "payload_too_large"),
        "DEFAULT_4XX": (None, None),
        "DEFAULT_5XX": (None, "internal_error"),
    }
    for response_type, (status, code) in expected.items():
        response = responses[response_type]
        assert response.get("statusCode") == status, response_type
        # API Gateway substitutes $context variables only; this one is a quoted string.
        raw = response["responseTemplates"]["application/json"]
        body = json.loads(raw.replace("$context.error.messageString", '"API Gateway says"'))
        assert set(body) == {"error", "message", "details"}
        assert body["details"] is None and body["message"]
        if code is not None:
            assert body["error"] == code


def test_every_function_reads_the_resources_through_its_environment(
    project_package: Packaged,
) -> None:
    variables = project_package.template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["TABLE_NAME"] == {"Ref": "Table"}
    assert variables["TABLE_STREAM_ARN"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert variables["FULFILMENT_QUEUE_URL"] == {"Ref": "FulfilmentQueue"}
    assert variables["NOTIFICATIONS_QUEUE_URL"] == {"Ref": "NotificationsQueue"}
    assert variables["REPORTS_BUCKET"] == {"Ref": "ReportsBucket"}
    assert variables["ALERTS_TOPIC_ARN"] == {"Ref": "AlertsTopic"}
    for function in project_package.functions().values():
        own = function.get("Environment", {}).get("Variables", {})
        assert not set(own) & {"TABLE_NAME", "FULFILMENT_QUEUE_URL", "REPORTS_BUCKET"}


def test_public_api_url_is_an_optional_stack_parameter_every_function_reads(
    project_package: Packaged,
) -> None:
    parameter = project_package.template["Parameters"]["PublicApiUrl"]
    assert parameter["Type"] == "String" and parameter["Default"] == ""
    variables = project_package.template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PUBLIC_API_URL"] == {"Ref": "PublicApiUrl"}
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.match("") and pattern.match("https://api.example.com/v1")
    assert not pattern.match("https://api.example.com/") and not pattern.match("http://a.b")


def test_support_socket_urls_come_from_the_websocket_api(project_package: Packaged) -> None:
    variables = project_package.template["Globals"]["Function"]["Environment"]["Variables"]
    host = "${WebsocketAPI}.execute-api.${AWS::Region}.amazonaws.com/api"
    assert variables["SUPPORT_SOCKET_URL"] == {"Fn::Sub": f"wss://{host}"}
    assert variables["SUPPORT_SOCKET_CALLBACK_URL"] == {"Fn::Sub": f"https://{host}"}
    assert project_package.resources["WebsocketAPI"]["Type"] == "AWS::ApiGatewayV2::Api"
    stages = {c["api_gateway_stage"] for c in CHALICE_CONFIG["stages"].values()}
    assert stages == {"api"}


def test_web_apps_are_served_from_a_private_bucket_only_through_the_distribution(
    project_package: Packaged,
) -> None:
    resources = project_package.resources
    bucket = resources["WebBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    (allow, deny) = resources["WebBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    source = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source.endswith("distribution/${WebDistribution}")
    assert deny["Effect"] == "Deny" and deny["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    config = resources["WebDistribution"]["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["WebOriginAccessControl", "Id"]}
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "WebHeadersPolicy"}
    (association,) = behaviour["FunctionAssociations"]
    assert association["EventType"] == "viewer-request"
    assert config["DefaultRootObject"] == "index.html"
    assert "CustomErrorResponses" not in config  # real 404s stay 404s
    outputs = project_package.template["Outputs"]
    assert {"WebUrl", "WebBucketName"} <= set(outputs)


def test_web_apps_get_security_headers_with_a_strict_content_security_policy(
    project_package: Packaged,
) -> None:
    policy = project_package.resources["WebHeadersPolicy"]["Properties"]
    headers = policy["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["ContentTypeOptions"]["Override"] is True
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"
    condition, with_domain, without = headers["ContentSecurityPolicy"]["ContentSecurityPolicy"][
        "Fn::If"
    ]
    assert condition in project_package.template["Conditions"]
    csp = without["Fn::Sub"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    custom = {d.split()[0]: d.split()[1:] for d in with_domain["Fn::Sub"].split("; ")}
    assert set(custom["connect-src"]) - set(directives["connect-src"]) == {"${PublicApiUrl}/"}
    socket = "wss://${WebsocketAPI}.execute-api.${AWS::Region}.amazonaws.com"
    assert socket in directives["connect-src"]
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "https://js.stripe.com" in directives["script-src"]
    assert any(s.startswith("'sha256-") for s in directives["script-src"])
    assert (
        "https://${RestAPI}.execute-api.${AWS::Region}.amazonaws.com" in directives["connect-src"]
    )
    cognito = "https://${UserPoolDomain}.auth.${AWS::Region}.amazoncognito.com"
    assert cognito in directives["connect-src"]
    # The shop posts review photos straight to the uploads bucket.
    assert "https://${UploadsBucket.RegionalDomainName}" in directives["connect-src"]


def test_every_function_and_the_api_are_traced_with_x_ray(project_package: Packaged) -> None:
    functions = {
        name: resource["Properties"]
        for name, resource in project_package.resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert functions
    assert {name: props.get("Tracing") for name, props in functions.items()} == {
        name: "Active" for name in functions
    }
    assert project_package.resources["RestAPI"]["Properties"]["TracingEnabled"] is True


def test_api_stage_is_throttled(project_package: Packaged) -> None:
    (setting,) = project_package.resources["RestAPI"]["Properties"]["MethodSettings"]
    assert setting["ResourcePath"] == "/*" and setting["HttpMethod"] == "*"
    parameters = project_package.template["Parameters"]
    for key in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
        assert parameters[setting[key]["Ref"]]["Default"] > 0


def test_packaged_roles_grant_nothing_unscoped(project_package: Packaged) -> None:
    roles = [
        resource["Properties"]
        for resource in project_package.resources.values()
        if resource["Type"] == "AWS::IAM::Role"
    ]
    assert roles
    for role in roles:
        for policy in role["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                _assert_scoped(statement)
                for resource in _as_list(statement.get("Resource", [])):
                    # Region and account are the stack's own, not wildcards.
                    assert ":*:*:" not in json.dumps(resource)


# --- the policy files ----------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_policy_file_has_no_wildcard_actions(stage: str) -> None:
    for statement in _policy(stage)["Statement"]:
        _assert_scoped(statement)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_policy_file_allows_the_app_on_the_templates_resources(stage: str) -> None:
    names = _physical_names(stage)
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{names['Table']}"
    queue = {name: f"arn:aws:sqs:{REGION}:{ACCOUNT}:{names[name]}" for name in names}
    needed = [
        ("dynamodb:UpdateItem", table),
        ("dynamodb:ConditionCheckItem", table),
        ("dynamodb:Query", f"{table}/index/gsi2"),
        ("dynamodb:GetRecords", f"{table}/stream/2026-01-01T00:00:00.000"),
        ("sqs:SendMessage", queue["FulfilmentQueue"]),
        ("sqs:ReceiveMessage", queue["NotificationsQueue"]),
        ("sqs:DeleteMessage", queue["FulfilmentQueue"]),
        ("sqs:GetQueueAttributes", queue["FulfilmentDeadLetterQueue"]),
        ("sqs:SendMessage", queue["StreamFailureQueue"]),
        ("s3:PutObject", f"arn:aws:s3:::{names['ReportsBucket']}/reports/x.csv"),
        ("sns:Publish", f"arn:aws:sns:{REGION}:{ACCOUNT}:{names['AlertsTopic']}"),
        ("ses:SendEmail", f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/example.com"),
        ("ses:SendEmail", f"arn:aws:ses:{REGION}:{ACCOUNT}:configuration-set/orderdesk-{stage}"),
        (
            "logs:PutLogEvents",
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/orderdesk-{stage}-relay:log-stream:x",
        ),
    ]
    policy = _policy(stage)
    for action, arn in needed:
        assert _allows(policy, action, arn), (action, arn)
    other_stage = "prod" if stage == "dev" else "dev"
    assert not _allows(policy, "dynamodb:PutItem", table.replace(stage, other_stage))
    assert not _allows(policy, "sns:Publish", f"arn:aws:sns:{REGION}:{ACCOUNT}:someone-elses")
    assert not _allows(
        policy,
        "ses:SendEmail",
        f"arn:aws:ses:{REGION}:{ACCOUNT}:configuration-set/orderdesk-{other_stage}",
    )


# --- an app with event handlers ------------------------------------------------------------


def test_event_app_package_is_cfn_lint_clean(event_app_package: Packaged) -> None:
    assert lint(event_app_package.path) == []


def test_sqs_handlers_report_partial_batch_failures(event_app_package: Packaged) -> None:
    (source,) = event_app_package.events_of_type("SQS")
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["Queue"] == {"Fn::Sub": "${FulfilmentQueue.Arn}"}
    assert source["BatchSize"] == 10  # what the handler declared survives the merge


def test_stream_handler_cannot_block_its_shard(event_app_package: Packaged) -> None:
    (source,) = event_app_package.events_of_type("DynamoDB")
    assert source["Stream"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert source["BisectBatchOnFunctionError"] is True
    assert 0 < source["MaximumRetryAttempts"] <= 10
    assert source["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["StreamFailureQueue", "Arn"]
    }


def test_functions_have_the_names_the_policy_expects(event_app_package: Packaged) -> None:
    names = {props["FunctionName"] for props in event_app_package.functions().values()}
    assert names == {
        "orderdesk-dev",
        "orderdesk-dev-fulfil_orders",
        "orderdesk-dev-relay_outbox",
        "orderdesk-dev-check_low_stock",
    }


def test_handler_on_an_undeclared_queue_fails_packaging() -> None:
    chalice_template = {
        "Resources": {
            "Stray": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Handler": "app.stray",
                    "Tags": {"aws-chalice": "version=1.34.0:stage=dev:app=orderdesk"},
                    "Events": {
                        "StraySqsEventSource": {
                            "Type": "SQS",
                            "Properties": {
                                "Queue": {
                                    "Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:"
                                    "${AWS::AccountId}:nowhere"
                                }
                            },
                        }
                    },
                },
            }
        }
    }
    with pytest.raises(PackagingError, match="nowhere"):
        build_merge_template(load_template(), chalice_template, STAGE)


def test_handler_on_an_undeclared_topic_fails_packaging() -> None:
    chalice_template = {
        "Resources": {
            "Stray": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Handler": "app.stray",
                    "Tags": {"aws-chalice": "version=1.34.0:stage=dev:app=orderdesk"},
                    "Events": {
                        "StraySnsSubscription": {
                            "Type": "SNS",
                            "Properties": {
                                "Topic": {
                                    "Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:"
                                    "${AWS::AccountId}:nowhere"
                                }
                            },
                        }
                    },
                },
            }
        }
    }
    with pytest.raises(PackagingError, match="nowhere"):
        build_merge_template(load_template(), chalice_template, STAGE)


# --- helpers -------------------------------------------------------------------------------


def _policy(stage: str) -> dict[str, Any]:
    return json.loads((PROJECT_ROOT / ".chalice" / f"policy-{stage}.json").read_text())


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _assert_scoped(statement: dict[str, Any]) -> None:
    actions = _as_list(statement["Action"])
    assert all(action != "*" and not action.endswith(":*") for action in actions), statement
    if "*" in _as_list(statement.get("Resource", [])):
        assert set(actions) <= UNSCOPED_ACTIONS, statement


def _allows(policy: dict[str, Any], action: str, arn: str) -> bool:
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow" or action not in _as_list(statement["Action"]):
            continue
        if "Resource" in statement and any(
            fnmatch.fnmatchcase(arn, pattern) for pattern in _as_list(statement["Resource"])
        ):
            return True
        if "NotResource" in statement and not any(
            fnmatch.fnmatchcase(arn, pattern) for pattern in _as_list(statement["NotResource"])
        ):
            return True
    return False


def _physical_names(stage: str) -> dict[str, str]:
    """Each named resource's physical name as CloudFormation would give it for ``stage``."""
    name_properties = {
        "AWS::DynamoDB::Table": "TableName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::S3::Bucket": "BucketName",
        "AWS::SNS::Topic": "TopicName",
    }
    substitutions = {"${Stage}": stage, "${AWS::AccountId}": ACCOUNT, "${AWS::Region}": REGION}
    names = {}
    for logical_id, resource in load_template()["Resources"].items():
        name_property = name_properties.get(resource["Type"])
        if name_property is None:
            continue
        name = resource["Properties"][name_property]["Fn::Sub"]
        for placeholder, value in substitutions.items():
            name = name.replace(placeholder, value)
        names[logical_id] = name
    return names
