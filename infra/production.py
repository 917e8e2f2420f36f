"""Resources only a deployment in AWS has: sign-in, log retention, the dashboard, alarms, budget.

``infra/resources.yaml`` holds what the app stores data in; the local stack creates it too.
What is here exists only in AWS (the local stack has its own identity provider and no
CloudWatch), and part of it needs Chalice's functions and API, so ``infra/package.py`` adds
it to the merge template:

* **Cognito**: the user pool, the groups the API authorizes by, the hosted UI domain, a
  confidential client for server-to-server callers (client credentials) and public PKCE
  clients for the shop and the console. The authorizer's issuer and client ids are read from
  these resources, never copied by hand.
* **Logs**: one log group per function, named as Lambda names it, with a retention.
* **SES**: a configuration set whose bounces and complaints are published to a topic (which
  only SES, for that set, may publish to); ``record_email_feedback`` is subscribed to it.
* **A dashboard and alarms** on what operations watch: orders, payments by method, API
  latency and errors, queue age and dead letters, throttles, low stock, reconciliation; the
  alarms and a monthly cost budget notify the alerts topic.
* **The web apps** (``web/``): a private, encrypted S3 bucket read only by a CloudFront
  distribution through origin access control; HTTPS only; a viewer-request function gives
  deep links under ``/shop/`` and ``/console/`` their app's ``index.html`` (a missing file
  with an extension stays a 404); a response headers policy adds HSTS, nosniff, a referrer
  policy and a strict Content-Security-Policy. ``infra/web_config.py`` publishes the files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

GROUPS = {
    "customers": "Shoppers: their own orders, payments, profile.",
    "ops": "Operations staff: catalogue, stock, orders, shipments, alerts.",
    "finance": "Finance: reports and payment reconciliation.",
    "support": "Customer support: orders, tracking, notifications of a customer.",
}
PAYMENT_METHODS = ("card", "alipay", "wechat_pay")
METRICS_NAMESPACE = "Orderdesk"
API_NAME = "orderdesk"  # the title of Chalice's API definition, which API Gateway names it by
OLDEST_MESSAGE_ALARM_SECONDS = 900
LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653]

PARAMETERS: dict[str, Any] = {
    "ShopCallbackUrls": {
        "Type": "CommaDelimitedList",
        "Default": "https://shop.example.com/shop/callback",
        "Description": "Where Cognito may return shoppers after sign-in (the shop's callback).",
    },
    "ShopLogoutUrls": {
        "Type": "CommaDelimitedList",
        "Default": "https://shop.example.com/shop/",
        "Description": "Where Cognito may send shoppers after signing out.",
    },
    "ConsoleCallbackUrls": {
        "Type": "CommaDelimitedList",
        "Default": "https://shop.example.com/console/callback",
        "Description": "Where Cognito may return staff after sign-in (the console's callback).",
    },
    "ConsoleLogoutUrls": {
        "Type": "CommaDelimitedList",
        "Default": "https://shop.example.com/console/",
        "Description": "Where Cognito may send staff after signing out.",
    },
    "LogRetentionDays": {
        "Type": "Number",
        "Default": 30,
        "AllowedValues": LOG_RETENTION_DAYS,
        "Description": "How long every function's logs are kept.",
    },
    "MonthlyBudgetUsd": {
        "Type": "Number",
        "Default": 200,
        "MinValue": 1,
        "Description": "Monthly cost budget; the alerts topic hears at 80% actual, 100% forecast.",
    },
    "ApiLatencyP99AlarmMs": {
        "Type": "Number",
        "Default": 3000,
        "Description": "API p99 latency (ms) over 5 minutes that raises an alarm.",
    },
}

# The topic name a handler gives @on_sns_message(topic=...) -> the topic's logical id here.
SNS_EVENT_SOURCES = {"email-feedback": "EmailFeedbackTopic"}
# SNS invokes its subscribers asynchronously: after Lambda's retries of a failing invocation,
# the event goes to this queue (the function's on-failure destination) instead of being lost.
SNS_FAILURE_QUEUES = {"email-feedback": "EmailFeedbackFailureQueue"}
SNS_MAX_RETRY_ATTEMPTS = 2

# Settings the app reads from these resources: the authorizer's issuer and clients, SES's set.
WEBSOCKET_HOST = "${WebsocketAPI}.execute-api.${AWS::Region}.amazonaws.com"
API_STAGE = "api"  # .chalice/config.json api_gateway_stage, for the REST and WebSocket APIs

APP_ENVIRONMENT: dict[str, Any] = {
    "JWT_ISSUER": {"Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"},
    "JWT_CLIENT_IDS": {
        "Fn::Join": [
            ",",
            [{"Ref": "ShopClient"}, {"Ref": "ConsoleClient"}, {"Ref": "ServerClient"}],
        ]
    },
    "SES_CONFIGURATION_SET": {"Ref": "EmailConfigurationSet"},
}
# With a WebSocket API (Chalice's logical id WebsocketAPI, on the REST API's stage name):
# clients connect to the wss:// URL, the app pushes through @connections on the https:// one.
SOCKET_ENVIRONMENT: dict[str, Any] = {
    "SUPPORT_SOCKET_URL": {"Fn::Sub": f"wss://{WEBSOCKET_HOST}/{API_STAGE}"},
    "SUPPORT_SOCKET_CALLBACK_URL": {"Fn::Sub": f"https://{WEBSOCKET_HOST}/{API_STAGE}"},
}


def _tags(stage_tag: bool = True) -> list[dict[str, Any]]:
    tags: list[dict[str, Any]] = [{"Key": "app", "Value": "orderdesk"}]
    if stage_tag:
        tags.append({"Key": "stage", "Value": {"Ref": "Stage"}})
    return tags


def identity_resources() -> dict[str, Any]:
    web_client = {
        "UserPoolId": {"Ref": "UserPool"},
        "GenerateSecret": False,
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthScopes": ["openid", "email", "phone", "profile"],
        "SupportedIdentityProviders": ["COGNITO"],
        "ExplicitAuthFlows": ["ALLOW_REFRESH_TOKEN_AUTH"],
        "PreventUserExistenceErrors": "ENABLED",
        "EnableTokenRevocation": True,
        "AccessTokenValidity": 60,
        "IdTokenValidity": 60,
        "TokenValidityUnits": {
            "AccessToken": "minutes",
            "IdToken": "minutes",
            "RefreshToken": "days",
        },
    }
    resources: dict[str, Any] = {
        "UserPool": {
            "Type": "AWS::Cognito::UserPool",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "UserPoolName": {"Fn::Sub": "orderdesk-${Stage}"},
                "UsernameAttributes": ["email"],
                "AutoVerifiedAttributes": ["email"],
                "DeletionProtection": {"Fn::If": ["IsProd", "ACTIVE", "INACTIVE"]},
                "AccountRecoverySetting": {
                    "RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]
                },
                "Policies": {
                    "PasswordPolicy": {
                        "MinimumLength": 10,
                        "RequireLowercase": True,
                        "RequireNumbers": True,
                        "RequireUppercase": False,
                        "RequireSymbols": False,
                    }
                },
                "UserPoolTags": {"app": "orderdesk"},
            },
        },
        "UserPoolDomain": {
            "Type": "AWS::Cognito::UserPoolDomain",
            "Properties": {
                # Hosted UI prefixes are global: the account id keeps this one unique.
                "Domain": {"Fn::Sub": "orderdesk-${Stage}-${AWS::AccountId}"},
                "UserPoolId": {"Ref": "UserPool"},
            },
        },
        "ApiResourceServer": {
            "Type": "AWS::Cognito::UserPoolResourceServer",
            "Properties": {
                "UserPoolId": {"Ref": "UserPool"},
                "Identifier": "orderdesk",
                "Name": "orderdesk API",
                "Scopes": [{"ScopeName": "api", "ScopeDescription": "Server-to-server calls"}],
            },
        },
        "ServerClient": {
            "Type": "AWS::Cognito::UserPoolClient",
            "DependsOn": "ApiResourceServer",
            "Properties": {
                "UserPoolId": {"Ref": "UserPool"},
                "ClientName": {"Fn::Sub": "orderdesk-${Stage}-server"},
                "GenerateSecret": True,
                "AllowedOAuthFlowsUserPoolClient": True,
                "AllowedOAuthFlows": ["client_credentials"],
                "AllowedOAuthScopes": ["orderdesk/api"],
                "SupportedIdentityProviders": ["COGNITO"],
                "PreventUserExistenceErrors": "ENABLED",
            },
        },
        "ShopClient": {
            "Type": "AWS::Cognito::UserPoolClient",
            "Properties": {
                **web_client,
                "ClientName": {"Fn::Sub": "orderdesk-${Stage}-shop"},
                "CallbackURLs": {"Ref": "ShopCallbackUrls"},
                "LogoutURLs": {"Ref": "ShopLogoutUrls"},
                "RefreshTokenValidity": 30,
            },
        },
        "ConsoleClient": {
            "Type": "AWS::Cognito::UserPoolClient",
            "Properties": {
                **web_client,
                "ClientName": {"Fn::Sub": "orderdesk-${Stage}-console"},
                "CallbackURLs": {"Ref": "ConsoleCallbackUrls"},
                "LogoutURLs": {"Ref": "ConsoleLogoutUrls"},
                # Staff sign in again every day.
                "RefreshTokenValidity": 1,
            },
        },
    }
    for group, description in GROUPS.items():
        resources[f"{group.capitalize()}Group"] = {
            "Type": "AWS::Cognito::UserPoolGroup",
            "Properties": {
                "GroupName": group,
                "Description": description,
                "UserPoolId": {"Ref": "UserPool"},
            },
        }
    return resources


def email_feedback_resources() -> dict[str, Any]:
    return {
        "EmailFeedbackTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {
                "TopicName": {"Fn::Sub": "orderdesk-${Stage}-email-feedback"},
                "Tags": _tags(),
            },
        },
        "EmailFeedbackTopicPolicy": {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [{"Ref": "EmailFeedbackTopic"}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "SesPublishesFeedback",
                            "Effect": "Allow",
                            "Principal": {"Service": "ses.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": {"Ref": "EmailFeedbackTopic"},
                            "Condition": {
                                "StringEquals": {"AWS:SourceAccount": {"Ref": "AWS::AccountId"}},
                                "ArnLike": {
                                    "AWS:SourceArn": {
                                        "Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:"
                                        "${AWS::AccountId}:configuration-set/orderdesk-${Stage}"
                                    }
                                },
                            },
                        }
                    ],
                },
            },
        },
        # Lambda's record of each invocation that failed after its retries (requestPayload:
        # the SNS event), kept 14 days, like a dead-letter queue.
        "EmailFeedbackFailureQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": {"Fn::Sub": "orderdesk-${Stage}-email-feedback-failures"},
                "MessageRetentionPeriod": 1209600,
                "SqsManagedSseEnabled": True,
            },
        },
        "EmailFeedbackFailureQueueAlarm": _alarm(
            "email-feedback-failures-not-empty",
            "Bounces or complaints failed after Lambda's retries, so those addresses are not "
            "marked undeliverable; fix, then replay each record's requestPayload.",
            Namespace="AWS/SQS",
            MetricName="ApproximateNumberOfMessagesVisible",
            Dimensions=[
                {
                    "Name": "QueueName",
                    "Value": {"Fn::GetAtt": ["EmailFeedbackFailureQueue", "QueueName"]},
                }
            ],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        ),
        "EmailConfigurationSet": {
            "Type": "AWS::SES::ConfigurationSet",
            "Properties": {"Name": {"Fn::Sub": "orderdesk-${Stage}"}},
        },
        "EmailFeedbackDestination": {
            "Type": "AWS::SES::ConfigurationSetEventDestination",
            "Properties": {
                "ConfigurationSetName": {"Ref": "EmailConfigurationSet"},
                "EventDestination": {
                    "Name": "bounces-and-complaints",
                    "Enabled": True,
                    "MatchingEventTypes": ["bounce", "complaint"],
                    "SnsDestination": {"TopicARN": {"Ref": "EmailFeedbackTopic"}},
                },
            },
        },
    }


def log_group_resources(function_names: Mapping[str, str]) -> dict[str, Any]:
    """A log group per function (logical id -> function name), kept ``LogRetentionDays``."""
    return {
        f"{logical_id}LogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "LogGroupName": f"/aws/lambda/{name}",
                "RetentionInDays": {"Ref": "LogRetentionDays"},
            },
        }
        for logical_id, name in sorted(function_names.items())
    }


def _alarm(name: str, description: str, **properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": {"Fn::Sub": f"orderdesk-${{Stage}}-{name}"},
            "AlarmDescription": description,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "AlertsTopic"}],
            "OKActions": [{"Ref": "AlertsTopic"}],
            **properties,
        },
    }


def _service_metric(name: str, stat: str = "Sum", **dimensions: str) -> dict[str, Any]:
    return {
        "Namespace": METRICS_NAMESPACE,
        "MetricName": name,
        "Dimensions": [
            {"Name": "service", "Value": "orderdesk"},
            *({"Name": key, "Value": value} for key, value in dimensions.items()),
        ],
    }


def alarm_resources(queues: Mapping[str, str], api_function: str) -> dict[str, Any]:
    """Alarms beyond the dead-letter ones in resources.yaml; ``queues`` maps each consumed
    queue's logical id to its short name."""
    api = [{"Name": "ApiName", "Value": API_NAME}, {"Name": "Stage", "Value": "api"}]
    alarms: dict[str, Any] = {
        "Api5xxRateAlarm": _alarm(
            "api-5xx-rate",
            "More than 1% of API requests failed with 5xx for 10 minutes: check the API "
            "function's errors in Logs Insights (level = ERROR).",
            Namespace="AWS/ApiGateway",
            MetricName="5XXError",
            Dimensions=api,
            Statistic="Average",
            Period=300,
            EvaluationPeriods=2,
            Threshold=0.01,
            ComparisonOperator="GreaterThanThreshold",
        ),
        "ApiLatencyP99Alarm": _alarm(
            "api-latency-p99",
            "API p99 latency is over its threshold: look for DynamoDB throttles, busy (503) "
            "answers and slow provider calls.",
            Namespace="AWS/ApiGateway",
            MetricName="Latency",
            Dimensions=api,
            ExtendedStatistic="p99",
            Period=300,
            EvaluationPeriods=3,
            DatapointsToAlarm=2,
            Threshold={"Ref": "ApiLatencyP99AlarmMs"},
            ComparisonOperator="GreaterThanThreshold",
        ),
        "TableThrottlesAlarm": _alarm(
            "table-throttles",
            "DynamoDB throttled requests on the table: a hot key (a flash-sale SKU to shard) "
            "or a runaway job.",
            Metrics=[
                {
                    "Id": "reads",
                    "ReturnData": False,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/DynamoDB",
                            "MetricName": "ReadThrottleEvents",
                            "Dimensions": [{"Name": "TableName", "Value": {"Ref": "Table"}}],
                        },
                        "Period": 300,
                        "Stat": "Sum",
                    },
                },
                {
                    "Id": "writes",
                    "ReturnData": False,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/DynamoDB",
                            "MetricName": "WriteThrottleEvents",
                            "Dimensions": [{"Name": "TableName", "Value": {"Ref": "Table"}}],
                        },
                        "Period": 300,
                        "Stat": "Sum",
                    },
                },
                {"Id": "throttles", "Expression": "reads + writes", "Label": "throttles"},
            ],
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        ),
        "ApiFunctionThrottlesAlarm": _alarm(
            "api-function-throttles",
            "Lambda throttled the API function: the account's concurrency is exhausted.",
            Namespace="AWS/Lambda",
            MetricName="Throttles",
            Dimensions=[{"Name": "FunctionName", "Value": api_function}],
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        ),
        "ReconciliationDiscrepanciesAlarm": _alarm(
            "reconciliation-discrepancies",
            "The daily payment reconciliation found discrepancies: read "
            "GET /ops/reconciliation?date= for the day.",
            **_service_metric("ReconciliationDiscrepancies"),
            Statistic="Sum",
            Period=86400,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        ),
        "SupportOverdueAlarm": _alarm(
            "support-overdue",
            "Support conversations are past their first-response time: open the queue with "
            "GET /support/conversations?overdue=true.",
            **_service_metric("SupportConversationsOverdue"),
            Statistic="Maximum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        ),
    }
    for logical_id, short_name in sorted(queues.items()):
        alarms[f"{logical_id}OldestMessageAlarm"] = _alarm(
            f"{short_name}-oldest-message",
            f"The {short_name} queue's oldest message waits over "
            f"{OLDEST_MESSAGE_ALARM_SECONDS // 60} minutes: its consumer is failing or "
            "throttled (check its errors, then GET /ops/queues).",
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": {"Fn::GetAtt": [logical_id, "QueueName"]}}],
            Statistic="Maximum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=OLDEST_MESSAGE_ALARM_SECONDS,
            ComparisonOperator="GreaterThanThreshold",
        )
    return alarms


def budget_resources() -> dict[str, Any]:
    subscriber = [{"SubscriptionType": "SNS", "Address": {"Ref": "AlertsTopic"}}]
    return {
        "MonthlyBudget": {
            "Type": "AWS::Budgets::Budget",
            "Properties": {
                "Budget": {
                    "BudgetName": {"Fn::Sub": "orderdesk-${Stage}-monthly"},
                    "BudgetType": "COST",
                    "TimeUnit": "MONTHLY",
                    "BudgetLimit": {"Amount": {"Ref": "MonthlyBudgetUsd"}, "Unit": "USD"},
                },
                "NotificationsWithSubscribers": [
                    {
                        "Notification": {
                            "NotificationType": kind,
                            "ComparisonOperator": "GREATER_THAN",
                            "Threshold": threshold,
                            "ThresholdType": "PERCENTAGE",
                        },
                        "Subscribers": subscriber,
                    }
                    for kind, threshold in (("ACTUAL", 80), ("FORECASTED", 100))
                ],
            },
        },
        # Budgets publish to the alerts topic only when its policy lets them.
        "AlertsTopicPolicy": {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [{"Ref": "AlertsTopic"}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "BudgetsPublish",
                            "Effect": "Allow",
                            "Principal": {"Service": "budgets.amazonaws.com"},
                            "Action": "SNS:Publish",
                            "Resource": {"Ref": "AlertsTopic"},
                        },
                        {
                            "Sid": "CloudWatchPublish",
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudwatch.amazonaws.com"},
                            "Action": "SNS:Publish",
                            "Resource": {"Ref": "AlertsTopic"},
                        },
                    ],
                },
            },
        },
    }


def dashboard_resource(queues: Mapping[str, str]) -> dict[str, Any]:
    """One CloudWatch dashboard; its body is JSON with ${...} filled in by Fn::Sub."""
    service = ["service", "orderdesk"]
    api = ["ApiName", API_NAME, "Stage", "api"]

    def widget(title: str, metrics: list[Any], **extra: Any) -> dict[str, Any]:
        return {
            "type": "metric",
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": "${AWS::Region}",
                "metrics": metrics,
                "period": 60,
                "stat": "Sum",
                **extra,
            },
        }

    payment_rates: list[Any] = []
    for index, method in enumerate(PAYMENT_METHODS):
        ok, failed = f"ok{index}", f"failed{index}"
        payment_rates += [
            [METRICS_NAMESPACE, "PaymentsSucceeded", *service, "method", method,
             {"id": ok, "visible": False}],
            [METRICS_NAMESPACE, "PaymentsFailed", *service, "method", method,
             {"id": failed, "visible": False}],
            [{"expression": f"100 * {ok} / ({ok} + {failed})", "label": method}],
        ]  # fmt: skip
    widgets = [
        widget("Orders per minute", [[METRICS_NAMESPACE, "OrdersPlaced", *service]]),
        widget("Payment success rate by method (%)", payment_rates, period=300),
        widget(
            "API latency (ms)",
            [
                ["AWS/ApiGateway", "Latency", *api, {"stat": "p50", "label": "p50"}],
                ["AWS/ApiGateway", "Latency", *api, {"stat": "p99", "label": "p99"}],
            ],
        ),
        widget("API 5xx", [["AWS/ApiGateway", "5XXError", *api]]),
        widget(
            "Oldest message age per queue (s)",
            [
                [
                    "AWS/SQS",
                    "ApproximateAgeOfOldestMessage",
                    "QueueName",
                    f"orderdesk-${{Stage}}-{name}",
                    {"label": name},
                ]
                for name in sorted(queues.values())
            ],
            stat="Maximum",
        ),
        widget(
            "Dead letters per queue",
            [
                [
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    "QueueName",
                    f"orderdesk-${{Stage}}-{name}-dlq",
                    {"label": name},
                ]
                for name in sorted(queues.values())
            ]
            + [
                [
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    "QueueName",
                    "orderdesk-${Stage}-email-feedback-failures",
                    {"label": "email-feedback (failed invocations)"},
                ]
            ],
            stat="Maximum",
        ),
        widget(
            "Low-stock alerts opened, stock-outs",
            [
                [METRICS_NAMESPACE, "LowStockAlertsOpened", *service],
                [METRICS_NAMESPACE, "StockOuts", *service],
            ],
            period=3600,
        ),
        widget(
            "Reconciliation discrepancies, refunds issued",
            [
                [METRICS_NAMESPACE, "ReconciliationDiscrepancies", *service],
                [METRICS_NAMESPACE, "RefundsIssued", *service],
            ],
            period=86400,
        ),
    ]
    for index, item in enumerate(widgets):
        item["x"], item["y"] = 12 * (index % 2), 6 * (index // 2)
    return {
        "Dashboard": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": {"Fn::Sub": "orderdesk-${Stage}"},
                "DashboardBody": {"Fn::Sub": json.dumps({"widgets": widgets})},
            },
        }
    }


# --- The web apps: a private bucket behind CloudFront -------------------------------------

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
WEB_APPS = ("shop", "console")
STRIPE_JS_ORIGIN = "https://js.stripe.com"
_INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE
)

# Viewer-request: a deep link under an app (no file extension in its last segment) gets the
# app's index.html; a missing file with an extension reaches S3 and stays a 404.
SPA_FUNCTION_CODE = """\
function handler(event) {
  var request = event.request;
  var uri = request.uri;
  var apps = ["shop", "console"];
  for (var i = 0; i < apps.length; i++) {
    var prefix = "/" + apps[i];
    if (uri === prefix) {
      return {
        statusCode: 301,
        statusDescription: "Moved Permanently",
        headers: {location: {value: prefix + "/"}}
      };
    }
    if (uri.indexOf(prefix + "/") === 0) {
      var last = uri.substring(uri.lastIndexOf("/") + 1);
      if (last.indexOf(".") === -1) {
        request.uri = prefix + "/index.html";
      }
      return request;
    }
  }
  return request;
}
"""


def inline_script_hashes(web_root: Path = WEB_ROOT) -> list[str]:
    """CSP sources for the inline scripts (import map, language) of each app's index.html."""
    hashes: set[str] = set()
    for app in WEB_APPS:
        page = web_root / app / "index.html"
        if not page.is_file():
            continue
        for script in _INLINE_SCRIPT.findall(page.read_text(encoding="utf-8")):
            digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
            hashes.add(f"'sha256-{digest}'")
    return sorted(hashes)


def content_security_policy(
    web_root: Path = WEB_ROOT, *, custom_api_domain: bool = False, socket: bool = False
) -> dict[str, Any]:
    """The apps' CSP: themselves, the API (and its custom domain, PublicApiUrl, when there is
    one), the support socket, the uploads bucket, Cognito's hosted UI and Stripe.js; nothing
    inline but the scripts of the index pages, by hash (a changed one needs a package)."""
    api_origin = "https://${RestAPI}.execute-api.${AWS::Region}.amazonaws.com"
    # Photos are posted straight to the uploads bucket (presigned POST, either host form).
    uploads = "https://${UploadsBucket.RegionalDomainName} https://${UploadsBucket.DomainName}"
    connect = f"{api_origin} {uploads}"
    if socket:
        connect += f" wss://{WEBSOCKET_HOST}"
    if custom_api_domain:
        connect += " ${PublicApiUrl}/"  # the trailing slash makes the path a prefix
    cognito = "https://${UserPoolDomain}.auth.${AWS::Region}.amazoncognito.com"
    cognito_idp = "https://cognito-idp.${AWS::Region}.amazonaws.com"
    directives = [
        "default-src 'self'",
        f"script-src 'self' {' '.join(inline_script_hashes(web_root))} {STRIPE_JS_ORIGIN}",
        "style-src 'self'",
        # Product images are URLs anywhere on https; the favicon is a data: URL.
        "img-src 'self' data: https:",
        "font-src 'self'",
        f"connect-src 'self' {connect} {cognito} {cognito_idp} https://api.stripe.com",
        f"frame-src {STRIPE_JS_ORIGIN} https://hooks.stripe.com",
        "object-src 'none'",
        "base-uri 'self'",
        f"form-action 'self' {cognito}",
        "frame-ancestors 'none'",
        "upgrade-insecure-requests",
    ]
    return {"Fn::Sub": "; ".join(directives)}


def web_hosting_resources(web_root: Path = WEB_ROOT, *, socket: bool = False) -> dict[str, Any]:
    """S3 (private) → CloudFront with origin access control, the SPA rewrite and headers."""
    distribution_arn = {
        "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/"
        "${WebDistribution}"
    }
    return {
        "WebBucket": {
            "Type": "AWS::S3::Bucket",
            "Properties": {
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                    ]
                },
                # A bad publish is rolled back by restoring the previous versions.
                "VersioningConfiguration": {"Status": "Enabled"},
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "expire-old-versions",
                            "Status": "Enabled",
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                        }
                    ]
                },
                "Tags": _tags(),
            },
        },
        "WebBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": "WebBucket"},
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            # ListBucket lets S3 answer a missing file with 404, not 403.
                            "Sid": "ReadByTheDistributionOnly",
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudfront.amazonaws.com"},
                            "Action": ["s3:GetObject", "s3:ListBucket"],
                            "Resource": [
                                {"Fn::GetAtt": ["WebBucket", "Arn"]},
                                {"Fn::Sub": "${WebBucket.Arn}/*"},
                            ],
                            "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}},
                        },
                        {
                            "Sid": "TlsOnly",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [
                                {"Fn::GetAtt": ["WebBucket", "Arn"]},
                                {"Fn::Sub": "${WebBucket.Arn}/*"},
                            ],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        },
                    ],
                },
            },
        },
        "WebOriginAccessControl": {
            "Type": "AWS::CloudFront::OriginAccessControl",
            "Properties": {
                "OriginAccessControlConfig": {
                    "Name": {"Fn::Sub": "orderdesk-${Stage}-web"},
                    "Description": "CloudFront signs its requests to the web bucket.",
                    "OriginAccessControlOriginType": "s3",
                    "SigningBehavior": "always",
                    "SigningProtocol": "sigv4",
                }
            },
        },
        "WebSpaFunction": {
            "Type": "AWS::CloudFront::Function",
            "Properties": {
                "Name": {"Fn::Sub": "orderdesk-${Stage}-web-routes"},
                "AutoPublish": True,
                "FunctionCode": SPA_FUNCTION_CODE,
                "FunctionConfig": {
                    "Comment": "Deep links under /shop/ and /console/ get the app's index.html",
                    "Runtime": "cloudfront-js-2.0",
                },
            },
        },
        "WebHeadersPolicy": {
            "Type": "AWS::CloudFront::ResponseHeadersPolicy",
            "Properties": {
                "ResponseHeadersPolicyConfig": {
                    "Name": {"Fn::Sub": "orderdesk-${Stage}-web-security"},
                    "Comment": "Security headers of the web apps",
                    "SecurityHeadersConfig": {
                        "ContentSecurityPolicy": {
                            "ContentSecurityPolicy": {
                                "Fn::If": [
                                    "HasPublicApiUrl",
                                    content_security_policy(
                                        web_root, custom_api_domain=True, socket=socket
                                    ),
                                    content_security_policy(web_root, socket=socket),
                                ]
                            },
                            "Override": True,
                        },
                        "StrictTransportSecurity": {
                            "AccessControlMaxAgeSec": 63072000,
                            "IncludeSubdomains": True,
                            "Override": True,
                        },
                        "ContentTypeOptions": {"Override": True},
                        "FrameOptions": {"FrameOption": "DENY", "Override": True},
                        # An OAuth callback's code must not leak onwards.
                        "ReferrerPolicy": {"ReferrerPolicy": "no-referrer", "Override": True},
                    },
                }
            },
        },
        "WebDistribution": {
            "Type": "AWS::CloudFront::Distribution",
            "Properties": {
                "DistributionConfig": {
                    "Enabled": True,
                    "Comment": {"Fn::Sub": "orderdesk ${Stage} web apps"},
                    "HttpVersion": "http2and3",
                    "IPV6Enabled": True,
                    "PriceClass": "PriceClass_All",
                    "DefaultRootObject": "index.html",
                    "Origins": [
                        {
                            "Id": "web-bucket",
                            "DomainName": {"Fn::GetAtt": ["WebBucket", "RegionalDomainName"]},
                            "OriginAccessControlId": {
                                "Fn::GetAtt": ["WebOriginAccessControl", "Id"]
                            },
                            # Empty: origin access control, not a legacy origin access identity.
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                    "DefaultCacheBehavior": {
                        "TargetOriginId": "web-bucket",
                        "ViewerProtocolPolicy": "redirect-to-https",
                        "AllowedMethods": ["GET", "HEAD", "OPTIONS"],
                        "CachedMethods": ["GET", "HEAD"],
                        "Compress": True,
                        # AWS's managed CachingOptimized policy: honours the objects' Cache-Control.
                        "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
                        "ResponseHeadersPolicyId": {"Ref": "WebHeadersPolicy"},
                        "FunctionAssociations": [
                            {
                                "EventType": "viewer-request",
                                "FunctionARN": {"Fn::GetAtt": ["WebSpaFunction", "FunctionARN"]},
                            }
                        ],
                    },
                },
                "Tags": _tags(),
            },
        },
    }


WEB_OUTPUTS: dict[str, Any] = {
    "WebUrl": {"Value": {"Fn::Sub": "https://${WebDistribution.DomainName}"}},
    "WebBucketName": {"Value": {"Ref": "WebBucket"}},
    "WebDistributionId": {"Value": {"Ref": "WebDistribution"}},
}


OUTPUTS: dict[str, Any] = {
    "UserPoolId": {"Value": {"Ref": "UserPool"}},
    "JwtIssuer": {"Value": APP_ENVIRONMENT["JWT_ISSUER"]},
    "HostedUiUrl": {
        "Value": {"Fn::Sub": "https://${UserPoolDomain}.auth.${AWS::Region}.amazoncognito.com"}
    },
    "ShopClientId": {"Value": {"Ref": "ShopClient"}},
    "ConsoleClientId": {"Value": {"Ref": "ConsoleClient"}},
    "ServerClientId": {"Value": {"Ref": "ServerClient"}},
    "DashboardName": {"Value": {"Ref": "Dashboard"}},
    **WEB_OUTPUTS,
}


CONDITIONS: dict[str, Any] = {
    "HasPublicApiUrl": {"Fn::Not": [{"Fn::Equals": [{"Ref": "PublicApiUrl"}, ""]}]},
}


def production_template(
    function_names: Mapping[str, str],
    queues: Mapping[str, str],
    api_function: str,
    *,
    socket: bool = False,
) -> dict[str, Any]:
    """Parameters, Conditions, Resources and Outputs to merge beside resources.yaml's;
    ``socket``: the app has a WebSocket API (its URL goes into the web apps' CSP)."""
    return {
        "Parameters": PARAMETERS,
        "Conditions": CONDITIONS,
        "Resources": {
            **identity_resources(),
            **email_feedback_resources(),
            **log_group_resources(function_names),
            **alarm_resources(queues, api_function),
            **budget_resources(),
            **dashboard_resource(queues),
            **web_hosting_resources(socket=socket),
        },
        "Outputs": OUTPUTS,
    }
