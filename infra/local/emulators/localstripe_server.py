"""localstripe, run as the local stack's Stripe (and the card adapter's tests').

    python -m infra.local.emulators.localstripe_server --port 0 --ready-file F [--parent-pid P]

localstripe is a stateful fake of Stripe's HTTP API; the card adapter talks to it exactly as
it talks to Stripe, by base URL. Run through this module it differs from ``localstripe
--port N`` in what the local stack and the tests need:

- it listens on 127.0.0.1 only; ``--port 0`` takes a free port and ``--ready-file`` receives
  ``{"url": ...}`` once it accepts connections;
- its objects live in this process's memory only (localstripe itself pickles every write to
  /tmp/localstripe.pickle, one file shared by every instance on the machine);
- PaymentIntents take the Stripe parameters localstripe 1.15 rejects and the adapter sends
  (``description``, ``return_url``, ``setup_future_usage``) and honour them as Stripe does:
  a test method id such as ``pm_card_visa`` becomes a real ``pm_...`` on the intent, and
  ``setup_future_usage`` attaches the card to the intent's customer once the payment succeeds;
- 3-D Secure gets a page a person can follow. Stripe answers ``redirect_to_url`` when the
  payment has a return_url; localstripe only says ``use_stripe_sdk``. Here the intent's
  ``next_action`` is ``redirect_to_url`` (with a return_url) or ``use_stripe_sdk`` whose
  ``stripe_js`` is that page (without one). The page, ``GET /_local/3ds/{id}?client_secret=``,
  has two buttons that complete or fail the authentication and then send the shopper to the
  return_url with ``payment_intent``, ``payment_intent_client_secret`` and
  ``redirect_status``, as Stripe does. A test can skip the page and use localstripe's own
  endpoint: ``POST /v1/payment_intents/{id}/_authenticate`` with ``client_secret`` and
  ``success=true`` (auth: the secret key, or ``key=pk_test_...`` in the form);
- it also sends events Stripe sends and localstripe does not:
  ``payment_intent.requires_action``, ``refund.created`` and ``charge.refunded``;
- the balance history filters on ``created`` (``gt``, ``gte``, ``lt``, ``lte``) as Stripe's does;
- Stripe's declining test cards (``4000000000000002`` and the other decline reasons) decline
  a payment, not only attaching to a customer;
- ``/js.stripe.com/v3/`` is a Stripe.js stand-in (``stripe_js_stand_in.js``) that browsers can
  pay with: ``elements()`` with a card element, ``createPaymentMethod`` (which, as with Stripe,
  posts the card to ``/v1/payment_methods`` with the publishable key: localstripe itself wants
  a secret key there) and ``handleNextAction`` (the 3-D Secure page in a dialog, which tells
  the page its outcome by ``postMessage``). localstripe's own stand-in cannot create methods.
- a PaymentIntent confirmed without ``return_url`` is refused, as Stripe refuses it since API
  version 2023-08-16, unless it is ``off_session``, names its ``payment_method_types`` or
  says ``automatic_payment_methods[allow_redirects]=never`` (Stripe's 400
  ``invalid_request_error`` naming the ``return_url`` param);
- balance transactions are in the account's settlement currency (``SETTLEMENT_CURRENCY``,
  Hong Kong dollars) as on a real account: a charge or refund in another currency is
  converted at ``EXCHANGE_RATES`` (``exchange_rate`` on the transaction) and a charge pays
  Stripe's fee (3.4% + HK$2.35) in that currency;
- ``GET /v1/payment_intents/search`` answers ``metadata['key']:'value'`` queries, Stripe's
  search result shape.

Webhooks are registered as with localstripe: ``POST /_config/webhooks/{name}`` with the form
fields ``url``, ``secret`` and ``events[]`` (see ``register_webhook``); each event is posted,
signed like Stripe's (``Stripe-Signature: t=...,v1=...``), about a second after it happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import html
import json
import logging
import os
import re
import signal
import socket
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # localstripe (and aiohttp) load only in the emulator's own process
    from aiohttp import web
    from localstripe.resources import BalanceTransaction, PaymentIntent, Refund

log = logging.getLogger("infra.local.emulators.localstripe_server")

HOST = "127.0.0.1"
AUTHENTICATION_PATH = "/_local/3ds"
_AUTHENTICATION_PAGE = re.compile(rf"{AUTHENTICATION_PATH}/(pi_\w+)")
STRIPE_JS_PATH = "/js.stripe.com/v3/"
STRIPE_JS_FILE = Path(__file__).with_name("stripe_js_stand_in.js")
# Where Stripe takes a publishable key instead of a secret one (localstripe: tokens, sources).
_PUBLISHABLE_KEY_PATHS = ("/v1/payment_methods",)
_DECLINED_TEST_CARDS = frozenset(
    {
        "4000000000000002",
        "4000000000009995",
        "4000000000009987",
        "4000000000009979",
        "4000000000000069",
        "4000000000000127",
        "4000000000000119",
    }
)
_SETUP_FUTURE_USAGE = (None, "on_session", "off_session")
_CREATED_BOUNDS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda created, bound: created > bound,
    "gte": lambda created, bound: created >= bound,
    "lt": lambda created, bound: created < bound,
    "lte": lambda created, bound: created <= bound,
}
_installed = False


def register_webhook(
    base_url: str,
    name: str,
    url: str,
    secret: str,
    events: Iterable[str] | None = None,
    *,
    timeout: float = 10.0,
) -> None:
    """Have the emulator post its events (those in ``events``; all when None) to ``url``."""
    fields = [("url", url), ("secret", secret)]
    fields += [("events[]", event) for event in events or ()]
    request = urllib.request.Request(
        f"{base_url}/_config/webhooks/{urllib.parse.quote(name, safe='')}",
        data=urllib.parse.urlencode(fields).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if response.status != 200:
            raise RuntimeError(f"registering webhook {name!r} answered {response.status}")


def read_ready_file(path: Path) -> str | None:
    """The emulator's base URL once it listens, from the file ``--ready-file`` names."""
    try:
        return str(json.loads(path.read_text())["url"])
    except (OSError, ValueError, KeyError):
        return None


# --- what localstripe is taught ----------------------------------------------------------------


def install(base_url: str) -> None:
    """Teach this process's localstripe the Stripe behaviour described above (once)."""
    global _installed
    if _installed:
        return
    _installed = True
    from aiohttp import web

    _keep_store_in_memory()
    _accept_stripe_intent_parameters()
    _redirect_for_authentication(base_url)
    _save_cards_for_later()
    _decline_charges_as_stripe_does()
    _send_refund_events()
    _filter_balance_history_by_date()
    _require_return_url_to_confirm()
    _settle_in_the_account_currency()
    from localstripe import server  # its routes are bound on import: after the patches

    # After localstripe's error middleware, which turns its errors into Stripe's JSON.
    server.app.middlewares.insert(1, web.middleware(_authentication_page))
    server.app.middlewares.insert(1, web.middleware(_browser_stripe_js))
    # After its auth middleware too: searching needs the secret key.
    auth = next(i for i, m in enumerate(server.app.middlewares) if m is server.auth_middleware)
    server.app.middlewares.insert(auth + 1, web.middleware(_search_payment_intents))


def _keep_store_in_memory() -> None:
    from localstripe import resources

    def nowhere(store: resources.Store) -> None:
        return None

    resources.Store.dump_to_disk = nowhere  # type: ignore[method-assign]
    resources.Store.try_load_from_disk = nowhere  # type: ignore[method-assign]


def _accept_stripe_intent_parameters() -> None:
    from localstripe.errors import UserError
    from localstripe.resources import PaymentIntent, PaymentMethod

    original = PaymentIntent.__init__

    def init(
        self: PaymentIntent,
        *,
        description: str | None = None,
        return_url: str | None = None,
        setup_future_usage: str | None = None,
        payment_method: str | None = None,
        automatic_payment_methods: Any = None,
        **params: Any,
    ) -> None:
        if automatic_payment_methods is not None and not isinstance(
            automatic_payment_methods, dict
        ):
            raise UserError(
                400, "Invalid automatic_payment_methods", {"param": "automatic_payment_methods"}
            )
        if setup_future_usage not in _SETUP_FUTURE_USAGE:
            raise UserError(400, "Invalid setup_future_usage", {"param": "setup_future_usage"})
        if return_url is not None and not str(return_url).startswith(("http://", "https://")):
            raise UserError(400, "Invalid return_url", {"param": "return_url"})
        if isinstance(payment_method, str):
            # Stripe turns a test method id into a real method the intent then names.
            test_method = PaymentMethod._try_get_canonical_test_article(payment_method)
            if test_method is not None:
                payment_method = test_method.id
        original(self, payment_method=payment_method, **params)
        self.description = description
        self.setup_future_usage = setup_future_usage
        self._return_url = return_url

    PaymentIntent.__init__ = init  # type: ignore[method-assign]


SETTLEMENT_CURRENCY = "hkd"
# Units of the settlement currency for one unit of the charge's (fixed, for repeatable tests).
EXCHANGE_RATES = {"cny": 1.0858, "usd": 7.7912, "eur": 8.3817, "hkd": 1.0}
FEE_PER_MILLE = 34  # 3.4%
FEE_FIXED = 235  # HK$2.35


def settlement_fee(amount: int) -> int:
    """Stripe's fee for a charge of ``amount`` in the settlement currency (half up)."""
    return (amount * FEE_PER_MILLE + 500) // 1000 + FEE_FIXED


def _settle_in_the_account_currency() -> None:
    from localstripe.resources import BalanceTransaction

    original = BalanceTransaction.__init__

    def init(self: BalanceTransaction, **params: Any) -> None:
        original(self, **params)
        currency = str(self.currency).lower()
        if currency != SETTLEMENT_CURRENCY:
            rate = EXCHANGE_RATES.get(currency, 1.0)
            self.amount = round(self.amount * rate)
            self.currency = SETTLEMENT_CURRENCY
            self.exchange_rate = rate
        else:
            self.exchange_rate = None
        if self.type == "charge":
            self.fee = settlement_fee(self.amount)
            self.fee_details = [
                {
                    "amount": self.fee,
                    "currency": SETTLEMENT_CURRENCY,
                    "description": "Stripe processing fees",
                    "type": "stripe_fee",
                }
            ]

    BalanceTransaction.__init__ = init  # type: ignore[method-assign]


RETURN_URL_REQUIRED = (
    "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. "
    "Because some of these payment methods might redirect your customer off of your page, "
    "you must provide a `return_url`. If you don't want to accept redirect-based payment "
    "methods, set `automatic_payment_methods[enabled]` to `true` and "
    "`automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and "
    "Payment Intents."
)


def _is_true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _require_return_url_to_confirm() -> None:
    from localstripe import resources
    from localstripe.errors import UserError
    from localstripe.resources import PaymentIntent

    original_create = PaymentIntent._api_create.__func__  # type: ignore[attr-defined]
    original_confirm = PaymentIntent._api_confirm.__func__  # type: ignore[attr-defined]

    def refuse() -> UserError:
        return UserError(
            400, RETURN_URL_REQUIRED, {"param": "return_url", "code": "parameter_missing"}
        )

    def avoids_redirects(data: dict[str, Any]) -> bool:
        automatic = data.get("automatic_payment_methods")
        return bool(data.get("payment_method_types")) or (
            isinstance(automatic, dict) and automatic.get("allow_redirects") == "never"
        )

    def create(cls: type[PaymentIntent], **data: Any) -> Any:
        if (
            _is_true(data.get("confirm"))
            and not data.get("return_url")
            and not _is_true(data.get("off_session"))
            and not avoids_redirects(data)
        ):
            raise refuse()
        intent = original_create(cls, **data)
        intent._avoids_redirects = avoids_redirects(data)
        return intent

    def confirm(
        cls: type[PaymentIntent],
        id: str,
        return_url: str | None = None,
        off_session: Any = None,
        **params: Any,
    ) -> Any:
        intent = cls._api_retrieve(id)
        if (
            not return_url
            and not _is_true(off_session)
            and not getattr(intent, "_avoids_redirects", False)
        ):
            raise refuse()
        if return_url:
            intent._return_url = return_url
        return original_confirm(cls, id, **params)

    PaymentIntent._api_create = classmethod(create)  # type: ignore[method-assign,assignment]
    PaymentIntent._api_confirm = classmethod(confirm)  # type: ignore[method-assign,assignment]
    # The confirm route was listed with the method itself, before this patch.
    for index, (method, url, _func) in enumerate(resources.extra_apis):
        if url == "/v1/payment_intents/{id}/confirm":
            resources.extra_apis[index] = (method, url, PaymentIntent._api_confirm)


_SEARCH_PATH = "/v1/payment_intents/search"
_METADATA_QUERY = re.compile(r"metadata\['([A-Za-z0-9_\-]+)'\]:'([^'\\]*)'")


async def _search_payment_intents(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    # A middleware: localstripe's own route would read "search" as a PaymentIntent id.
    from aiohttp import web
    from localstripe.errors import UserError
    from localstripe.resources import store

    if request.path != _SEARCH_PATH or request.method != "GET":
        return await handler(request)
    match = _METADATA_QUERY.fullmatch(request.query.get("query", "").strip())
    if match is None:
        raise UserError(400, "Invalid search query", {"param": "query"})
    key, value = match.groups()
    found = [
        intent
        for name, intent in store.items()
        if name.startswith("payment_intent:") and (intent.metadata or {}).get(key) == value
    ]
    found.sort(key=lambda intent: intent.created, reverse=True)
    body = {
        "object": "search_result",
        "url": _SEARCH_PATH,
        "has_more": False,
        "next_page": None,
        "data": [intent._export() for intent in found],
    }
    return web.json_response(body)


def _redirect_for_authentication(base_url: str) -> None:
    from localstripe.resources import Event, PaymentIntent
    from localstripe.webhooks import schedule_webhook

    original = PaymentIntent._confirm

    def confirm(self: PaymentIntent, on_failure_now: Callable[[], None]) -> None:
        original(self, on_failure_now)
        if self.next_action is None:
            return
        query = urllib.parse.urlencode({"client_secret": self.client_secret})
        page = f"{base_url}{AUTHENTICATION_PATH}/{self.id}?{query}"
        return_url = getattr(self, "_return_url", None)
        if return_url:
            self.next_action = {
                "type": "redirect_to_url",
                "redirect_to_url": {"url": page, "return_url": return_url},
            }
        else:
            self.next_action = {
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": page},
            }
        schedule_webhook(Event("payment_intent.requires_action", self))

    PaymentIntent._confirm = confirm  # type: ignore[method-assign]


def _save_cards_for_later() -> None:
    from localstripe.resources import PaymentIntent, PaymentMethod

    original = PaymentIntent._on_success

    def on_success(self: PaymentIntent) -> None:
        if getattr(self, "setup_future_usage", None) and self.customer and self.payment_method:
            method = PaymentMethod._api_retrieve(self.payment_method)
            if method.customer is None:
                method.customer = self.customer
        original(self)

    PaymentIntent._on_success = on_success  # type: ignore[method-assign]


def _decline_charges_as_stripe_does() -> None:
    """Stripe's test cards that decline (generic, insufficient funds, lost, stolen, expired,
    incorrect CVC, processing error) decline a payment; localstripe declines them only when
    they are attached to a customer, and would let a shopper pay with them."""
    from localstripe.resources import PaymentMethod

    original = PaymentMethod._charging_is_declined

    def declined(self: PaymentMethod) -> bool:
        number = getattr(self, "_card_number", None)
        return bool(original(self)) or (self.type == "card" and number in _DECLINED_TEST_CARDS)

    PaymentMethod._charging_is_declined = declined  # type: ignore[method-assign]


def _send_refund_events() -> None:
    from localstripe.resources import Charge, Event, Refund
    from localstripe.webhooks import schedule_webhook

    original = Refund.__init__

    def init(self: Refund, **params: Any) -> None:
        original(self, **params)
        schedule_webhook(Event("refund.created", self))
        schedule_webhook(Event("charge.refunded", Charge._api_retrieve(self.charge)))

    Refund.__init__ = init  # type: ignore[method-assign]


def _filter_balance_history_by_date() -> None:
    from localstripe.errors import UserError
    from localstripe.resources import BalanceTransaction, try_convert_to_int

    original = BalanceTransaction._api_list_all.__func__  # type: ignore[attr-defined]

    def list_all(
        cls: type[BalanceTransaction], url: str, created: Any = None, **params: Any
    ) -> Any:
        listing = original(cls, url, **params)
        if created is None:
            return listing
        if not isinstance(created, dict) or not created or not set(created) <= set(_CREATED_BOUNDS):
            raise UserError(400, "Invalid created", {"param": "created"})
        bounds = {op: try_convert_to_int(value) for op, value in created.items()}
        if not all(isinstance(bound, int) for bound in bounds.values()):
            raise UserError(400, "Invalid created", {"param": "created"})
        listing._list = [
            item
            for item in listing._list
            if all(_CREATED_BOUNDS[op](item.created, bound) for op, bound in bounds.items())
        ]
        return listing

    BalanceTransaction._api_list_all = classmethod(list_all)  # type: ignore[method-assign,assignment]


# --- Stripe.js for browsers ----------------------------------------------------------------


async def _browser_stripe_js(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    from aiohttp import web

    if request.method == "GET" and request.path == STRIPE_JS_PATH:
        return web.Response(
            body=STRIPE_JS_FILE.read_bytes(),
            content_type="text/javascript",
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )
    if (
        request.method == "POST"
        and request.path in _PUBLISHABLE_KEY_PATHS
        and "Authorization" not in request.headers
    ):
        # Stripe.js sends the publishable key as the form's ``key`` (a CORS-simple request);
        # localstripe takes it only on a few paths and wants a secret key on this one.
        from localstripe.errors import UserError

        as_secret = request.clone(headers={**request.headers, "Authorization": "Bearer sk_test_js"})
        body = await as_secret.read()
        key = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("key", [""])[0]
        if not re.fullmatch(r"pk_(test|live)_\w+", key):
            raise UserError(401, "Unauthorized")
        return await handler(as_secret)
    return await handler(request)


# --- the 3-D Secure page ---------------------------------------------------------------------


async def _authentication_page(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    # A middleware rather than a route: localstripe's auth middleware wants an API key on
    # every path but its own few, and a shopper's browser has none.
    from localstripe.errors import UserError

    match = _AUTHENTICATION_PAGE.fullmatch(request.path)
    if match is None:
        return await handler(request)
    if request.method == "GET":
        return _show_challenge(match.group(1), request.query.get("client_secret", ""))
    if request.method == "POST":
        form = await request.post()
        return _answer_challenge(
            match.group(1), str(form.get("client_secret", "")), form.get("outcome") == "complete"
        )
    raise UserError(405, "Method Not Allowed")


def _intent_for(intent_id: str, client_secret: str) -> PaymentIntent:
    from localstripe.errors import UserError
    from localstripe.resources import PaymentIntent

    intent = PaymentIntent._api_retrieve(intent_id)
    if not hmac.compare_digest(client_secret.encode(), intent.client_secret.encode()):
        raise UserError(401, "Unauthorized")
    return intent


def _show_challenge(intent_id: str, client_secret: str) -> web.Response:
    intent = _intent_for(intent_id, client_secret)
    if intent.status != "requires_action":
        return _page("Nothing to authenticate", f"This payment is {intent.status}.", 409)
    amount = f"{intent.amount} {str(intent.currency).upper()} (minor units)"
    body = (
        f"<p>Test bank: confirm the payment of <strong>{html.escape(amount)}</strong>.</p>"
        f'<form method="post">'
        f'<input type="hidden" name="client_secret" value="{html.escape(client_secret)}">'
        '<button name="outcome" value="complete">Complete authentication</button> '
        '<button name="outcome" value="fail">Fail authentication</button>'
        "</form>"
    )
    return _page("3-D Secure", body, 200)


def _answer_challenge(intent_id: str, client_secret: str, success: bool) -> web.Response:
    from aiohttp import web
    from localstripe.resources import PaymentIntent

    intent = _intent_for(intent_id, client_secret)
    PaymentIntent._api_authenticate(intent_id, client_secret=client_secret, success=success)
    succeeded = intent.status in ("succeeded", "processing", "requires_capture")
    return_url = getattr(intent, "_return_url", None)
    if not return_url:
        outcome = "completed" if succeeded else "failed"
        # Stripe.js shows this page in a frame and learns the outcome by message.
        message = json.dumps(
            {
                "type": "stripe-3ds-result",
                "payment_intent": intent.id,
                "status": "succeeded" if succeeded else "failed",
            }
        )
        script = f"<script>window.parent.postMessage({message}, '*');</script>"
        text = f"Authentication {outcome}; you can close this page."
        return _page("3-D Secure", f"{text}{script}", 200)
    query = urllib.parse.urlencode(
        {
            "payment_intent": intent.id,
            "payment_intent_client_secret": intent.client_secret,
            "redirect_status": "succeeded" if succeeded else "failed",
        }
    )
    separator = "&" if urllib.parse.urlsplit(return_url).query else "?"
    raise web.HTTPSeeOther(f"{return_url}{separator}{query}")


def _page(title: str, body: str, status: int) -> web.Response:
    from aiohttp import web

    document = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=document, status=status, content_type="text/html")


# --- serving ---------------------------------------------------------------------------------


async def _serve(listener: socket.socket, ready_file: Path | None, parent_pid: int | None) -> None:
    from aiohttp import web
    from localstripe import server

    runner = web.AppRunner(server.app, access_log=logging.getLogger("aiohttp.access"))
    await runner.setup()
    await web.SockSite(runner, listener).start()
    url = f"http://{HOST}:{listener.getsockname()[1]}"
    if ready_file is not None:
        temp = ready_file.with_name(f".{ready_file.name}.{os.getpid()}")
        temp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
        temp.replace(ready_file)
    log.info("Stripe emulator (localstripe) listening on %s", url)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watcher = asyncio.create_task(_watch_parent(parent_pid, stop)) if parent_pid else None
    try:
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        await runner.cleanup()


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(1.0)
        if os.getppid() != parent_pid:
            log.warning("the process that started the Stripe emulator is gone; stopping")
            stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local.emulators.localstripe_server",
        description="localstripe on 127.0.0.1, in memory, with Stripe's redirect for 3-D Secure.",
    )
    parser.add_argument("--port", type=int, default=0, help="0 takes a free port")
    parser.add_argument("--ready-file", type=Path, help="receives {url} once listening")
    parser.add_argument("--parent-pid", type=int, help="stop when this parent process is gone")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s localstripe %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, args.port))
    install(f"http://{HOST}:{listener.getsockname()[1]}")
    started = time.monotonic()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(listener, args.ready_file, args.parent_pid))
    log.info("stopped after %.0f s", time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
