"""The card adapter against localstripe over HTTP: payments, saved cards, 3-D Secure,
declines, refunds, signed webhooks and the day's settlement.

localstripe runs as the local stack runs it (``infra.local.emulators.localstripe_server``),
on a free port, for this module. Test PaymentMethods are made from Stripe's public test card
numbers, against the emulator only.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from chalicelib.adapters.payments import (
    CardProvider,
    Notification,
    NotificationKind,
    PaymentProvider,
    PaymentRequest,
    ProviderError,
    ProviderStatus,
    RefundRequest,
    SettlementKind,
)
from chalicelib.adapters.payments.card import StripeCardProvider
from chalicelib.domain.money import Money
from infra.local.emulators.localstripe_server import (
    EXCHANGE_RATES,
    read_ready_file,
    register_webhook,
    settlement_fee,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
API_KEY = f"sk_test_{secrets.token_hex(12)}"
WEBHOOK_SECRET = f"whsec_{secrets.token_urlsafe(24)}"
CARD_REQUIRING_3DS = "4000000000003220"
CARD_DECLINED_ON_CHARGE = "4000000000000341"


class WebhookReceiver:
    """A local endpoint that records what localstripe posts to it."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.received.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/payments/card"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def wait_for(
        self, provider: CardProvider, matches: Callable[[Notification], bool], timeout: float = 15
    ) -> Notification:
        """The first received notification that verifies and ``matches``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                received = list(self.received)
            for headers, body in received:
                notification = provider.verify_notification(headers, body)
                if matches(notification):
                    return notification
            time.sleep(0.2)
        raise AssertionError(f"no matching webhook within {timeout} s ({len(received)} received)")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("localstripe")
    ready_file = state / "ready.json"
    with (state / "localstripe.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "infra.local.emulators.localstripe_server",
                "--port",
                "0",
                "--ready-file",
                str(ready_file),
                "--parent-pid",
                str(os.getpid()),
            ],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while (url := read_ready_file(ready_file)) is None:
            assert process.poll() is None, (state / "localstripe.log").read_text()
            assert time.monotonic() < deadline, "localstripe did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def webhooks(localstripe: str) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    register_webhook(localstripe, "card-provider-tests", receiver.url, WEBHOOK_SECRET)
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def provider(localstripe: str) -> StripeCardProvider:
    return StripeCardProvider(API_KEY, webhook_secret=WEBHOOK_SECRET, api_base=localstripe)


@pytest.fixture(scope="module")
def stripe_client(localstripe: str) -> stripe.StripeClient:
    """What the tests use to look at the emulator directly."""
    return stripe.StripeClient(API_KEY, base_addresses={"api": localstripe})


def card_method(client: stripe.StripeClient, number: str) -> str:
    """A PaymentMethod for a Stripe test card number (emulator only; never stored)."""
    method = client.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    return str(method.id)


def payment_request(**overrides: Any) -> PaymentRequest:
    fields: dict[str, Any] = {
        "payment_id": f"pay-{uuid.uuid4().hex[:12]}",
        "order_id": f"ord-{uuid.uuid4().hex[:12]}",
        "amount": Money(12_900, "CNY"),
        "description": "orderdesk test order",
        "notify_url": "http://127.0.0.1:9/webhooks/payments/card",
        "payment_method": "pm_card_visa",
        **overrides,
    }
    return PaymentRequest(**fields)


def refund_request(payment: PaymentRequest, provider_payment_id: str, amount: int) -> RefundRequest:
    return RefundRequest(
        refund_id=f"ref-{uuid.uuid4().hex[:12]}",
        payment_id=payment.payment_id,
        provider_payment_id=provider_payment_id,
        amount=Money(amount, payment.amount.currency),
        payment_amount=payment.amount,
        reason="damaged in transit",
        notify_url=payment.notify_url,
    )


def test_the_adapter_implements_every_card_provider_operation() -> None:
    operations = [
        name for name in vars(CardProvider) | vars(PaymentProvider) if not name.startswith("_")
    ]
    assert "create_payment" in operations and "detach_method" in operations
    for name in operations:
        # An operation left to the protocol would silently answer None.
        assert getattr(StripeCardProvider, name) is not getattr(CardProvider, name), name
    assert StripeCardProvider.name == "card"


def test_a_visa_test_card_pays_in_one_call(
    provider: StripeCardProvider, stripe_client: stripe.StripeClient
) -> None:
    request = payment_request()

    payment = provider.create_payment(request)

    assert payment.status is ProviderStatus.SUCCEEDED
    assert payment.provider_payment_id.startswith("pi_")
    assert payment.amount == Money(12_900, "CNY")
    assert payment.next_action is None and payment.saved_method is None
    intent = stripe_client.v1.payment_intents.retrieve(payment.provider_payment_id)
    assert intent.metadata.to_dict() == {
        "payment_id": request.payment_id,
        "order_id": request.order_id,
    }
    assert (intent.currency, intent.amount) == ("cny", 12_900)
    again = provider.retrieve_payment(request.payment_id, payment.provider_payment_id)
    assert again.status is ProviderStatus.SUCCEEDED


def test_a_card_saved_on_the_first_payment_pays_the_next_in_one_call(
    provider: StripeCardProvider, stripe_client: stripe.StripeClient
) -> None:
    first = provider.create_payment(
        payment_request(save_for_later=True, customer_email="alice@example.com")
    )

    assert first.status is ProviderStatus.SUCCEEDED
    saved = first.saved_method
    assert saved is not None
    assert saved.provider_customer_id.startswith("cus_")
    assert saved.provider_method_id.startswith("pm_")
    assert (saved.brand, saved.last4, saved.exp_month, saved.exp_year) == ("visa", "4242", 12, 2030)
    customer = stripe_client.v1.customers.retrieve(saved.provider_customer_id)
    assert customer.email == "alice@example.com"

    second_request = payment_request(
        payment_method=None, saved_method=saved, amount=Money(4_500, "CNY")
    )
    second = provider.create_payment(second_request)

    assert second.status is ProviderStatus.SUCCEEDED
    assert second.amount == Money(4_500, "CNY")
    intent = stripe_client.v1.payment_intents.retrieve(second.provider_payment_id)
    assert intent.customer == saved.provider_customer_id
    assert intent.payment_method == saved.provider_method_id

    provider.detach_method(saved)
    method = stripe_client.v1.payment_methods.retrieve(saved.provider_method_id)
    assert method.customer is None


def test_a_3ds_card_is_completed_on_the_page_it_redirects_to_and_the_webhook_says_so(
    provider: StripeCardProvider,
    stripe_client: stripe.StripeClient,
    webhooks: WebhookReceiver,
) -> None:
    request = payment_request(
        payment_method=card_method(stripe_client, CARD_REQUIRING_3DS),
        return_url="https://shop.example.com/checkout/done?order=1",
    )

    payment = provider.create_payment(request)

    assert payment.status is ProviderStatus.REQUIRES_ACTION
    assert payment.next_action is not None
    assert payment.next_action["type"] == "redirect"
    page = requests.get(payment.next_action["url"], timeout=10)
    assert page.status_code == 200
    assert "Complete authentication" in page.text
    asked = webhooks.wait_for(provider, lambda n: n.payment_id == request.payment_id)
    assert asked.status is ProviderStatus.REQUIRES_ACTION

    completed = requests.post(
        payment.next_action["url"].split("?")[0],
        data={"client_secret": payment.next_action["client_secret"], "outcome": "complete"},
        allow_redirects=False,
        timeout=10,
    )

    assert completed.status_code == 303
    back = urllib.parse.urlsplit(completed.headers["Location"])
    assert back.netloc == "shop.example.com" and back.path == "/checkout/done"
    query = urllib.parse.parse_qs(back.query)
    assert query["order"] == ["1"]
    assert query["payment_intent"] == [payment.provider_payment_id]
    assert query["redirect_status"] == ["succeeded"]
    assert (
        provider.retrieve_payment(request.payment_id, payment.provider_payment_id).status
        is ProviderStatus.SUCCEEDED
    )
    notification = webhooks.wait_for(
        provider,
        lambda n: n.payment_id == request.payment_id and n.status is ProviderStatus.SUCCEEDED,
    )
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.event_type == "payment_intent.succeeded"
    assert notification.provider_payment_id == payment.provider_payment_id
    assert notification.amount == request.amount
    assert notification.event_id.startswith("evt_")


def test_a_3ds_card_without_return_url_completes_through_the_authenticate_endpoint(
    provider: StripeCardProvider, stripe_client: stripe.StripeClient, localstripe: str
) -> None:
    request = payment_request(payment_method=card_method(stripe_client, CARD_REQUIRING_3DS))
    payment = provider.create_payment(request)
    assert payment.status is ProviderStatus.REQUIRES_ACTION
    assert payment.next_action is not None
    assert payment.next_action["type"] == "redirect"  # the emulator's page, as stripe_js

    # What a browser running localstripe's Stripe.js does: it needs only the client secret.
    answer = requests.post(
        f"{localstripe}/v1/payment_intents/{payment.provider_payment_id}/_authenticate",
        data={
            "key": "pk_test_local",
            "client_secret": payment.next_action["client_secret"],
            "success": "true",
        },
        timeout=10,
    )

    assert answer.status_code == 200
    assert (
        provider.retrieve_payment(request.payment_id, payment.provider_payment_id).status
        is ProviderStatus.SUCCEEDED
    )


def test_a_failed_3ds_authentication_fails_the_payment(
    provider: StripeCardProvider, stripe_client: stripe.StripeClient
) -> None:
    request = payment_request(
        payment_method=card_method(stripe_client, CARD_REQUIRING_3DS),
        return_url="https://shop.example.com/done",
    )
    payment = provider.create_payment(request)
    assert payment.next_action is not None

    failed = requests.post(
        payment.next_action["url"].split("?")[0],
        data={"client_secret": payment.next_action["client_secret"], "outcome": "fail"},
        allow_redirects=False,
        timeout=10,
    )

    assert "redirect_status=failed" in failed.headers["Location"]
    outcome = provider.retrieve_payment(request.payment_id, payment.provider_payment_id)
    assert outcome.status is ProviderStatus.FAILED
    assert outcome.failure_code == "payment_intent_authentication_failure"


def test_a_declined_card_fails_with_its_code_instead_of_raising(
    provider: StripeCardProvider,
    stripe_client: stripe.StripeClient,
    webhooks: WebhookReceiver,
) -> None:
    request = payment_request(
        payment_method=card_method(stripe_client, CARD_DECLINED_ON_CHARGE), save_for_later=True
    )

    payment = provider.create_payment(request)

    assert payment.status is ProviderStatus.FAILED
    assert payment.failure_code == "card_declined"
    assert payment.failure_message
    assert payment.saved_method is None
    assert payment.provider_payment_id.startswith("pi_")
    assert (
        provider.retrieve_payment(request.payment_id, payment.provider_payment_id).status
        is ProviderStatus.FAILED
    )
    notification = webhooks.wait_for(provider, lambda n: n.payment_id == request.payment_id)
    assert notification.status is ProviderStatus.FAILED
    assert notification.event_type == "payment_intent.payment_failed"
    assert notification.failure_code == "card_declined"


def test_a_partial_refund_succeeds_and_carries_our_refund_id(
    provider: StripeCardProvider, stripe_client: stripe.StripeClient
) -> None:
    request = payment_request(amount=Money(5_000, "CNY"))
    payment = provider.create_payment(request)
    refund = refund_request(request, payment.provider_payment_id, 1_500)

    result = provider.refund(refund)

    assert result.status is ProviderStatus.SUCCEEDED
    assert result.amount == Money(1_500, "CNY")
    assert result.provider_refund_id.startswith("re_")
    stored = stripe_client.v1.refunds.retrieve(result.provider_refund_id)
    assert stored.metadata["refund_id"] == refund.refund_id
    assert stored.metadata["payment_id"] == request.payment_id
    charge = stripe_client.v1.charges.retrieve(str(stored.charge))
    assert charge.payment_intent == payment.provider_payment_id
    assert (charge.amount_refunded, charge.refunded) == (1_500, False)


def test_settlement_for_today_names_our_payments_and_refunds(
    provider: StripeCardProvider,
) -> None:
    request = payment_request(amount=Money(7_700, "CNY"))
    payment = provider.create_payment(request)
    refund = refund_request(request, payment.provider_payment_id, 700)
    provider.refund(refund)
    today = datetime.now(UTC).date()

    lines = provider.settlement(today)

    paid = [line for line in lines if line.reference == request.payment_id]
    refunded = [line for line in lines if line.reference == refund.refund_id]
    assert len(paid) == 1 and len(refunded) == 1
    assert paid[0].kind is SettlementKind.PAYMENT
    assert paid[0].provider_reference == payment.provider_payment_id
    assert paid[0].amount == Money(7_700, "CNY")
    # The account settles in HKD: the line keeps the charge's own amount and currency,
    # with the converted amount, the rate and Stripe's fee beside it.
    rate = EXCHANGE_RATES["cny"]
    assert paid[0].settlement == Money(round(7_700 * rate), "HKD")
    assert paid[0].details["exchange_rate"] == rate
    assert paid[0].fee == Money(settlement_fee(round(7_700 * rate)), "HKD")
    assert refunded[0].settlement == Money(round(700 * rate), "HKD")
    assert refunded[0].kind is SettlementKind.REFUND
    assert refunded[0].amount == Money(700, "CNY")  # positive: a refund by its kind
    assert refunded[0].provider_reference.startswith("re_")
    assert all(line.provider == "card" for line in lines)
    assert all(line.settled_at and line.settled_at.date() == today for line in lines)
    yesterday = provider.settlement(today - timedelta(days=1))
    assert request.payment_id not in {line.reference for line in yesterday}


def test_settlement_pages_through_more_lines_than_one_page(
    provider: StripeCardProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chalicelib.adapters.payments.card._SETTLEMENT_PAGE_SIZE", 2)
    ids = [provider.create_payment(payment_request()).provider_payment_id for _ in range(3)]

    lines = provider.settlement(datetime.now(UTC).date())

    found = {line.provider_reference for line in lines}
    assert set(ids) <= found
    assert len(found) == len(lines)  # no line twice


def test_a_payment_named_for_another_payment_id_is_refused(provider: StripeCardProvider) -> None:
    payment = provider.create_payment(payment_request())

    with pytest.raises(ProviderError) as refused:
        provider.retrieve_payment("pay-someone-else", payment.provider_payment_id)

    assert refused.value.code == "payment_mismatch"


def test_stripe_refusing_a_request_is_a_provider_error_that_is_not_retried(
    provider: StripeCardProvider,
) -> None:
    request = payment_request()

    with pytest.raises(ProviderError) as refused:
        provider.refund(refund_request(request, "pi_doesnotexist", 100))

    assert refused.value.code == "invalid_request"
    assert refused.value.retryable is False


def test_an_unreachable_stripe_is_a_retryable_provider_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    unreachable = StripeCardProvider(
        API_KEY, api_base=f"http://127.0.0.1:{closed_port}", max_network_retries=0
    )

    with pytest.raises(ProviderError) as failed:
        unreachable.create_payment(payment_request())

    assert failed.value.code == "connection_error"
    assert failed.value.retryable is True


# --- confirming needs a return_url (Stripe API 2023-08-16 and later) ------------------------


def test_stripe_sdk_confirm_without_return_url_is_refused_as_stripe_refuses_it(
    stripe_client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.payment_intents.create(
            {
                "amount": 1_000,
                "currency": "cny",
                "payment_method": "pm_card_visa",
                "confirm": True,
            }
        )

    error = refused.value
    assert error.http_status == 400
    assert error.param == "return_url"
    assert (error.json_body or {})["error"]["type"] == "invalid_request_error"


def test_stripe_sdk_confirming_later_without_return_url_is_refused_too(
    stripe_client: stripe.StripeClient,
) -> None:
    intent = stripe_client.v1.payment_intents.create(
        {"amount": 1_000, "currency": "cny", "payment_method": "pm_card_visa"}
    )

    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.payment_intents.confirm(intent.id)
    assert refused.value.param == "return_url"

    confirmed = stripe_client.v1.payment_intents.confirm(
        intent.id, {"return_url": "https://shop.example.com/orders/ord-2"}
    )
    assert confirmed.status == "succeeded"


@pytest.mark.parametrize(
    "bypass",
    [
        {"return_url": "https://shop.example.com/orders/ord-1"},
        {"payment_method_types": ["card"]},
        {"automatic_payment_methods": {"enabled": True, "allow_redirects": "never"}},
    ],
)
def test_stripe_sdk_confirm_with_a_documented_bypass_is_accepted(
    stripe_client: stripe.StripeClient, bypass: dict[str, Any]
) -> None:
    intent = stripe_client.v1.payment_intents.create(
        {
            "amount": 1_000,
            "currency": "cny",
            "payment_method": "pm_card_visa",
            "confirm": True,
            **bypass,
        }
    )

    assert intent.status == "succeeded"


def test_a_new_card_is_confirmed_with_the_servers_return_url(
    provider: StripeCardProvider, stripe_client: stripe.StripeClient
) -> None:
    return_url = "https://shop.example.com/orders/ord-return-1"
    payment = provider.create_payment(
        payment_request(
            payment_method=card_method(stripe_client, CARD_REQUIRING_3DS), return_url=return_url
        )
    )

    assert payment.status is ProviderStatus.REQUIRES_ACTION
    intent = stripe_client.v1.payment_intents.retrieve(payment.provider_payment_id)
    assert intent.next_action.redirect_to_url.return_url == return_url


# --- an unknown outcome ------------------------------------------------------------------------


def test_a_payment_whose_answer_was_lost_is_found_by_our_payment_id(
    provider: StripeCardProvider,
) -> None:
    request = payment_request()
    made = provider.create_payment(request)  # as if the answer had never arrived

    found = provider.retrieve_payment(request.payment_id, "")

    assert found.provider_payment_id == made.provider_payment_id
    assert found.status is ProviderStatus.SUCCEEDED
    with pytest.raises(ProviderError) as missing:
        provider.retrieve_payment("pay-never-sent", "")
    assert missing.value.code == "payment_not_found"


def test_a_stripe_server_error_is_retryable_and_one_call_stays_inside_api_gateways_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chalicelib.adapters.payments import card

    assert card.REQUEST_TIMEOUT_SECONDS * (card.NETWORK_RETRIES + 1) <= 20

    class Failing:
        def create(self, *args: Any) -> None:
            raise stripe.APIError("Stripe is having trouble", http_status=500)

    provider = StripeCardProvider(API_KEY, api_base="http://127.0.0.1:9")
    monkeypatch.setattr(provider._client.v1, "payment_intents", Failing())

    with pytest.raises(ProviderError) as failed:
        provider.create_payment(payment_request())

    assert failed.value.retryable is True
