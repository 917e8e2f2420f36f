"""Notification channels: email through SES, SMS and app push through SNS.

Every channel is a ``Sender``: ``send(address, message)`` delivers one rendered message to
one address (an email address, an E.164 phone number, an SNS platform endpoint ARN) and
returns the provider's message id, or raises. ``RecipientUnreachable`` means this address
cannot receive (say, a push endpoint the platform disabled), which is not worth retrying;
any other exception is a failure that is.

``PushRegistry`` turns an app's device token into an SNS platform endpoint. Clients are
created on first use; boto3 reaches the local emulator through ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

from chalicelib.domain.notifications import Channel, PushPlatform, RenderedMessage
from chalicelib.settings import get_settings

_CHARSET = "UTF-8"
# SNS names the endpoint that already holds a token when it refuses to create another.
_EXISTING_ENDPOINT = re.compile(r"Endpoint (arn:[^\s]+) already exists")


class RecipientUnreachable(Exception):
    """This address cannot receive messages; sending to it again will not help."""


class ChannelNotConfigured(Exception):
    """The channel lacks configuration (a sender address, a platform application)."""


class InvalidPushToken(Exception):
    """The push platform refused the device token."""


class Sender(Protocol):
    def send(self, address: str, message: RenderedMessage) -> str: ...


def _config() -> Any:
    from botocore.config import Config

    return Config(
        retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10
    )


@functools.lru_cache(maxsize=1)
def ses_client() -> Any:
    import boto3

    return boto3.client("ses", config=_config())


@functools.lru_cache(maxsize=1)
def sns_client() -> Any:
    import boto3

    return boto3.client("sns", config=_config())


def reset() -> None:
    """Forget cached clients (tests that switch endpoints or start moto call this)."""
    ses_client.cache_clear()
    sns_client.cache_clear()


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _error_message(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Message", ""))


class SesEmailSender:
    """Plain-text email from ``from_address`` (an SES-verified identity), sent with the
    configuration set ``configuration_set`` when one is given, so that SES publishes the
    message's bounces and complaints to the email-feedback topic."""

    def __init__(self, from_address: str, configuration_set: str = "") -> None:
        self.from_address = from_address
        self.configuration_set = configuration_set

    def send(self, address: str, message: RenderedMessage) -> str:
        if not self.from_address:
            raise ChannelNotConfigured("no sender address (NOTIFICATIONS_FROM_EMAIL)")
        extra = {"ConfigurationSetName": self.configuration_set} if self.configuration_set else {}
        response = ses_client().send_email(
            Source=self.from_address,
            Destination={"ToAddresses": [address]},
            Message={
                "Subject": {"Data": message.subject, "Charset": _CHARSET},
                "Body": {"Text": {"Data": message.body, "Charset": _CHARSET}},
            },
            **extra,
        )
        return str(response["MessageId"])


class SnsSmsSender:
    """A text message to a phone number, marked transactional (delivered for reliability,
    not price)."""

    def send(self, address: str, message: RenderedMessage) -> str:
        response = sns_client().publish(
            PhoneNumber=address,
            Message=message.body,
            MessageAttributes={
                "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
            },
        )
        return str(response["MessageId"])


def push_payload(message: RenderedMessage) -> dict[str, str]:
    """SNS's per-platform message: SNS picks the key matching the endpoint's platform."""
    data = {"link": message.link} if message.link else {}
    apns = {"aps": {"alert": {"title": message.subject, "body": message.body}}, **data}
    fcm = {"notification": {"title": message.subject, "body": message.body}, "data": data}
    return {
        "default": message.body,
        "APNS": json.dumps(apns, ensure_ascii=False),
        "APNS_SANDBOX": json.dumps(apns, ensure_ascii=False),
        "GCM": json.dumps(fcm, ensure_ascii=False),
    }


class SnsPushSender:
    """A push notification to one SNS platform endpoint (one app install)."""

    def send(self, address: str, message: RenderedMessage) -> str:
        try:
            response = sns_client().publish(
                TargetArn=address,
                MessageStructure="json",
                Message=json.dumps(push_payload(message), ensure_ascii=False),
            )
        except Exception as exc:
            if _error_code(exc) in ("EndpointDisabled", "NotFound"):
                raise RecipientUnreachable(address) from exc
            raise
        return str(response["MessageId"])


class PushRegistry:
    """SNS platform endpoints for device tokens, one platform application per platform."""

    def __init__(self, application_arns: Mapping[PushPlatform, str]) -> None:
        self.application_arns = dict(application_arns)

    def endpoint_for(self, platform: PushPlatform, token: str) -> str:
        """The endpoint for ``token``, created or found, and enabled.

        CreatePlatformEndpoint answers with the existing endpoint for a known token; the
        platform may have disabled it since (an expired token comes back when the app
        registers again), so it is switched back on with the token it has now.
        """
        application_arn = self.application_arns.get(PushPlatform(platform))
        if not application_arn:
            raise ChannelNotConfigured(f"no SNS platform application for {platform}")
        client = sns_client()
        try:
            endpoint_arn = str(
                client.create_platform_endpoint(
                    PlatformApplicationArn=application_arn, Token=token
                )["EndpointArn"]
            )
        except Exception as exc:
            if _error_code(exc) != "InvalidParameter":
                raise
            existing = _EXISTING_ENDPOINT.search(_error_message(exc))
            if existing is None:
                raise InvalidPushToken(_error_message(exc)) from exc
            endpoint_arn = existing.group(1)
        attributes = client.get_endpoint_attributes(EndpointArn=endpoint_arn)["Attributes"]
        if str(attributes.get("Enabled", "true")).lower() != "true" or (
            attributes.get("Token") != token
        ):
            client.set_endpoint_attributes(
                EndpointArn=endpoint_arn, Attributes={"Token": token, "Enabled": "true"}
            )
        return endpoint_arn


def senders() -> dict[Channel, Sender]:
    """The configured sender of each channel."""
    settings = get_settings()
    return {
        Channel.EMAIL: SesEmailSender(
            settings.notifications_from_email, settings.ses_configuration_set
        ),
        Channel.SMS: SnsSmsSender(),
        Channel.PUSH: SnsPushSender(),
    }


def push_registry() -> PushRegistry:
    settings = get_settings()
    return PushRegistry(
        {
            PushPlatform.APNS: settings.push_apns_application_arn,
            PushPlatform.FCM: settings.push_fcm_application_arn,
        }
    )
