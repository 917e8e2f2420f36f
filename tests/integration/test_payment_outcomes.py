"""What a card payment becomes when Stripe's answer is lost, where 3-D Secure returns the
shopper, and what a provider's notification without an amount is answered: over moto and the
Chalice test client, with a scripted provider standing in for Stripe."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from test_orders_api import build_world, order_body, place, receive

from chalicelib import public_api
from chalicelib.adapters.payments import (
    Notification,
    NotificationKind,
    PaymentRequest,
    ProviderError,
    ProviderPayment,
    ProviderStatus,
    WebhookReply,
)
from chalicelib.domain.money import Money
from chalicelib.domain.payments import PaymentStatus
from chalicelib.services import payments, pending_payments, refunds
from chalicelib.settings import get_settings
from chalicelib.store import orders as order_store
from chalicelib.store import payments as store

if TYPE_CHECKING:
    from conftest import Api

STOREFRONT = "https://shop.example.com"


@dataclass
class ScriptedStripe:
    """Answers as told; records what it was asked."""

    name: str = "card"
    create_error: ProviderError | None = None
    status: ProviderStatus = ProviderStatus.SUCCEEDED
    known: bool = True  # whether Stripe has a PaymentIntent for the payment
    requests: list[PaymentRequest] = field(default_factory=list)
    retrieved: list[tuple[str, str]] = field(default_factory=list)
    notification: Notification | None = None

    def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        self.requests.append(request)
        if self.create_error is not None:
            raise self.create_error
        return ProviderPayment("pi_new", self.status, request.amount)

    def retrieve_payment(self, payment_id: str, provider_payment_id: str) -> ProviderPayment:
        self.retrieved.append((payment_id, provider_payment_id))
        if not self.known:
            raise ProviderError("no such intent", code="payment_not_found")
        amount = self.requests[-1].amount
        return ProviderPayment("pi_found", self.status, amount)

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        assert self.notification is not None
        return self.notification

    def acknowledge(self) -> WebhookReply:
        return WebhookReply(200, "ok")

    def reject(self, message: str) -> WebhookReply:
        return WebhookReply(401, "no")


@pytest.fixture
def stripe_stub(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedStripe]:
    monkeypatch.setenv("STOREFRONT_URL", STOREFRONT)
    get_settings.cache_clear()
    build_world()
    receive("MUG", "SH", 10)
    stub = ScriptedStripe()
    monkeypatch.setattr(payments, "get_provider", lambda name: stub)
    monkeypatch.setattr(pending_payments, "get_provider", lambda name: stub)
    yield stub


@pytest.fixture
def alerts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    published: list[tuple[str, dict[str, Any]]] = []

    def publish(subject: str, details: Mapping[str, Any], *, kind: str) -> bool:
        published.append((kind, dict(details)))
        return True

    monkeypatch.setattr(payments.alerts, "publish", publish)
    return published


def pay_by_card(api: Api) -> tuple[str, dict[str, Any]]:
    placed = place(api, order_body({"MUG": 1}))
    assert placed.status_code == 201, placed.json_body
    order_id = placed.json_body["order_id"]
    response = api.request(
        "POST",
        f"/orders/{order_id}/payments",
        {"method": "card", "payment_method": "pm_card_visa"},
        api.customer,
    )
    assert response.status_code == 201, response.json_body
    return order_id, response.json_body


def order_status(order_id: str) -> str:
    order = order_store.get_order(order_id, consistent=True)
    assert order is not None
    return order.status.value


# --- where 3-D Secure returns the shopper -------------------------------------------------------


def test_a_new_card_is_confirmed_with_the_storefronts_page_for_the_order(
    api: Api, stripe_stub: ScriptedStripe
) -> None:
    order_id, _ = pay_by_card(api)

    (request,) = stripe_stub.requests
    assert request.return_url == f"{STOREFRONT}/orders/{order_id}"


# --- an answer that never came -----------------------------------------------------------------


@pytest.mark.parametrize("code", ["connection_error", "rate_limited", "provider_unavailable"])
def test_a_card_payment_whose_answer_was_lost_stays_pending(
    api: Api, stripe_stub: ScriptedStripe, code: str
) -> None:
    stripe_stub.create_error = ProviderError("no answer", code=code, retryable=True)

    order_id, payment = pay_by_card(api)

    assert payment["status"] == "pending"
    stored = store.get_payment(payment["payment_id"])
    assert stored is not None and stored.status is PaymentStatus.PENDING
    assert order_status(order_id) == "pending_payment"


def test_a_card_refusal_still_fails_the_payment_at_once(
    api: Api, stripe_stub: ScriptedStripe
) -> None:
    stripe_stub.create_error = ProviderError("bad request", code="invalid_request")

    _, payment = pay_by_card(api)

    assert payment["status"] == "failed"


def test_the_sweep_asks_stripe_after_two_minutes_and_pays_the_order(
    api: Api, stripe_stub: ScriptedStripe
) -> None:
    stripe_stub.create_error = ProviderError("timeout", code="connection_error", retryable=True)
    order_id, payment = pay_by_card(api)
    started = datetime.now(UTC)

    early = pending_payments.resolve_pending_payments(started + timedelta(seconds=60))
    assert early.asked == 0 and stripe_stub.retrieved == []

    report = pending_payments.resolve_pending_payments(started + timedelta(minutes=3))

    assert report.as_dict() == {"asked": 1, "resolved": [payment["payment_id"]]}
    assert stripe_stub.retrieved == [(payment["payment_id"], "")]
    stored = store.get_payment(payment["payment_id"])
    assert stored is not None and stored.status is PaymentStatus.SUCCEEDED
    assert stored.provider_payment_id == "pi_found"
    assert order_status(order_id) == "paid"
    later = started + timedelta(hours=1)
    assert store.pending_payments("card", pending_payments.EPOCH, later) == []


def test_a_payment_stripe_never_saw_fails_only_after_an_hour(
    api: Api, stripe_stub: ScriptedStripe
) -> None:
    stripe_stub.create_error = ProviderError("timeout", code="connection_error", retryable=True)
    stripe_stub.known = False
    order_id, payment = pay_by_card(api)
    started = datetime.now(UTC)

    pending_payments.resolve_pending_payments(started + timedelta(minutes=10))
    stored = store.get_payment(payment["payment_id"])
    assert stored is not None and stored.status is PaymentStatus.PENDING

    pending_payments.resolve_pending_payments(started + timedelta(minutes=61))
    stored = store.get_payment(payment["payment_id"])
    assert stored is not None and stored.status is PaymentStatus.FAILED
    assert stored.failure is not None and stored.failure.code == "provider_unreachable"
    assert order_status(order_id) == "pending_payment"


def test_the_webhook_resolves_a_payment_whose_answer_was_lost(
    api: Api, stripe_stub: ScriptedStripe
) -> None:
    stripe_stub.create_error = ProviderError("5xx", code="provider_unavailable", retryable=True)
    order_id, payment = pay_by_card(api)
    stripe_stub.notification = _success(payment, Money(payment["amount"]["amount"], "CNY"))

    reply = payments.receive_notification("card", {}, b"{}")

    assert reply.status_code == 200
    assert order_status(order_id) == "paid"


def test_the_resolving_job_is_scheduled_every_five_minutes() -> None:
    from chalice.app import ScheduledEventConfig

    from app import app

    (config,) = [
        c
        for c in app.event_sources
        if isinstance(c, ScheduledEventConfig) and c.name == "resolve_pending_payments"
    ]
    assert str(config.schedule_expression.to_string()) == "rate(5 minutes)"


# --- a success without an amount ---------------------------------------------------------------


def test_a_verified_success_without_an_amount_is_refused_and_ops_are_alerted(
    api: Api, stripe_stub: ScriptedStripe, alerts: list[tuple[str, dict[str, Any]]]
) -> None:
    stripe_stub.status = ProviderStatus.PENDING
    order_id, payment = pay_by_card(api)
    stripe_stub.notification = _success(payment, None)

    reply = payments.receive_notification("card", {}, b"{}")

    assert reply.status_code == 401  # the provider's failure answer: it will send it again
    assert [kind for kind, _ in alerts] == ["payment.notification_without_amount"]
    assert alerts[0][1]["payment_id"] == payment["payment_id"]
    stored = store.get_payment(payment["payment_id"])
    assert stored is not None and stored.status is PaymentStatus.PENDING
    assert not store.webhook_seen("card", "evt_no_amount")
    assert order_status(order_id) == "pending_payment"


def _success(payment: dict[str, Any], amount: Money | None) -> Notification:
    return Notification(
        provider="card",
        event_id="evt_no_amount" if amount is None else "evt_paid",
        kind=NotificationKind.PAYMENT,
        status=ProviderStatus.SUCCEEDED,
        payment_id=payment["payment_id"],
        provider_payment_id="pi_late",
        amount=amount,
    )


# --- where notify URLs point -----------------------------------------------------------------


def test_without_public_api_url_an_alipay_payment_is_503_and_nothing_is_written(
    api: Api, stripe_stub: ScriptedStripe
) -> None:
    placed = place(api, order_body({"MUG": 1}))
    order_id = placed.json_body["order_id"]

    response = api.request(
        "POST", f"/orders/{order_id}/payments", {"method": "alipay"}, api.customer
    )

    assert response.status_code == 503
    assert response.json_body["error"] == "payments_unavailable"
    assert store.payments_of_order(order_id) == []
    assert stripe_stub.requests == []
    assert order_status(order_id) == "pending_payment"


def test_a_card_payment_needs_no_public_api_url(api: Api, stripe_stub: ScriptedStripe) -> None:
    _, payment = pay_by_card(api)

    assert payment["status"] == "succeeded"
    assert stripe_stub.requests[0].notify_url == ""


def test_the_configured_public_api_url_wins_over_the_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUBLIC_API_URL", "https://api.shop.example.com/")
    get_settings.cache_clear()
    try:
        with public_api.serving({"domainName": "abc.execute-api.aws", "stage": "api"}):
            url = refunds.notify_url("wechat_pay")
    finally:
        get_settings.cache_clear()

    assert url == "https://api.shop.example.com/webhooks/payments/wechat_pay"


def test_without_the_setting_a_request_gives_its_own_domain_and_stage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PUBLIC_API_URL", raising=False)
    get_settings.cache_clear()
    context = {"domainName": "k3x9.execute-api.cn-north-1.amazonaws.com.cn", "stage": "api"}
    try:
        with public_api.serving(context):
            url = refunds.notify_url("alipay")
        with pytest.raises(public_api.PaymentsUnavailable):
            refunds.notify_url("alipay")  # a job: no request, no setting
    finally:
        get_settings.cache_clear()

    assert (
        url == "https://k3x9.execute-api.cn-north-1.amazonaws.com.cn/api/webhooks/payments/alipay"
    )


def test_a_job_without_the_setting_logs_the_configuration_error_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("PUBLIC_API_URL", raising=False)
    monkeypatch.setattr(public_api, "_reported", False)
    get_settings.cache_clear()
    try:
        public_api.report_if_unresolvable_for_jobs()
        public_api.report_if_unresolvable_for_jobs()
    finally:
        get_settings.cache_clear()

    logged = [r for r in caplog.records if "PUBLIC_API_URL" in r.getMessage()]
    assert [r.levelname for r in logged] == ["ERROR"]
