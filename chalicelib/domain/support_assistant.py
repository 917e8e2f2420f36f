"""The support assistant: recognises a customer's question and answers it from live data.

Recognition is rule-based: the message is cut into terms by the catalogue search's own
tokenizer (CJK bigrams and whole words, see ``domain/search.py``) and each intent scores the
keywords it knows in both languages. Asking for a person always wins; otherwise the intent
with most hits wins, ties going to the earlier one in ``_RULES``. The answer is a template in
the customer's language filled from ``OrderFacts`` the service gathered from the orders and
tracking it holds right now. The assistant says what it is and never claims to be a person;
what it cannot answer it hands to support.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from chalicelib.domain import search


class Intent(StrEnum):
    WHERE_IS_MY_ORDER = "where_is_my_order"
    CANCEL = "cancel"
    RETURN_OR_EXCHANGE = "return_or_exchange"
    PAYMENT = "payment"
    HUMAN = "human"
    UNKNOWN = "unknown"


# Terms as ``search.description_terms`` yields them: two-character CJK bigrams, whole words.
_HUMAN = frozenset(
    {"人工", "真人", "人类", "human", "agent", "person", "representative", "operator"}
)
_RULES: tuple[tuple[Intent, frozenset[str]], ...] = (
    (
        Intent.WHERE_IS_MY_ORDER,
        frozenset(
            {"快递", "物流", "到哪", "在哪", "哪了", "发货", "配送", "包裹", "运单", "单号", "派送"}
            | {"where", "tracking", "track", "shipped", "shipping", "delivery", "deliver"}
            | {"delivered", "parcel", "package", "arrive", "arrived", "eta"}
        ),
    ),
    (
        Intent.CANCEL,
        frozenset({"取消", "撤销", "不要", "cancel", "cancelled", "cancellation", "canceled"}),
    ),
    (
        Intent.RETURN_OR_EXCHANGE,
        frozenset(
            {"退货", "换货", "退换", "退款", "退回", "售后"}
            | {"return", "returns", "exchange", "refund", "refunds"}
        ),
    ),
    (
        Intent.PAYMENT,
        frozenset(
            {"付款", "支付", "扣款", "付钱", "扣费", "付了", "微信", "支付宝"}
            | {"payment", "pay", "paid", "charged", "charge", "card", "alipay", "wechat"}
        ),
    ),
)
_ORDER_ID = re.compile(r"\bord_[0-9A-Za-z]{26}\b")


def terms_of(text: str) -> set[str]:
    return search.description_terms(text)


def recognise(text: str) -> Intent:
    terms = terms_of(text)
    if terms & _HUMAN:
        return Intent.HUMAN
    best, best_hits = Intent.UNKNOWN, 0
    for intent, keywords in _RULES:
        hits = len(terms & keywords)
        if hits > best_hits:
            best, best_hits = intent, hits
    return best


def order_id_in(text: str) -> str | None:
    match = _ORDER_ID.search(text)
    return match.group(0) if match else None


def language_of(text: str, profile_locale: str | None = None) -> str:
    """``zh-CN`` or ``en``: the profile's locale when it names one, else the text's script."""
    if profile_locale:
        lowered = profile_locale.lower()
        if lowered.startswith("zh"):
            return "zh-CN"
        if lowered.startswith("en"):
            return "en"
    return "zh-CN" if any(is_cjk for is_cjk, _ in search.segments(text)) else "en"


@dataclass(frozen=True, slots=True)
class ParcelFacts:
    carrier: str | None
    tracking_number: str | None
    status: str
    latest_description: str | None = None
    latest_place: str | None = None
    latest_at: datetime | None = None
    estimated_delivery: datetime | None = None


@dataclass(frozen=True, slots=True)
class OrderFacts:
    order_id: str
    status: str
    can_cancel: bool
    expires_at: datetime | None = None
    parcels: tuple[ParcelFacts, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Answer:
    intent: Intent
    body: str | None  # None: nothing the assistant can say; the conversation goes to support
    hand_over: bool


_STATUS_WORDS = {
    "zh-CN": {
        "pending_payment": "待付款",
        "paid": "已付款，等待仓库处理",
        "picking": "仓库拣货中",
        "packed": "已打包，等待揽收",
        "shipped": "已发货",
        "out_for_delivery": "派送中",
        "delivered": "已签收",
        "completed": "已完成",
        "cancelled": "已取消",
        "expired": "已过期（未付款）",
    },
    "en": {
        "pending_payment": "awaiting payment",
        "paid": "paid, waiting for the warehouse",
        "picking": "being picked",
        "packed": "packed, waiting for the carrier",
        "shipped": "shipped",
        "out_for_delivery": "out for delivery",
        "delivered": "delivered",
        "completed": "completed",
        "cancelled": "cancelled",
        "expired": "expired (not paid)",
    },
}

_TEXT = {
    "zh-CN": {
        "intro": "您好，我是自动助手（不是人工客服）。",
        "no_order": "我没有找到您的订单。请告诉我订单号，或回复“转人工”联系客服。",
        "order": "订单 {order_id} 当前状态：{status}。",
        "parcel": "包裹由 {carrier} 承运，运单号 {tracking_number}。",
        "parcel_waiting": "包裹尚未交给快递公司。",
        "latest": "最新动态：{at}{place} {description}。",
        "eta": "预计送达：{eta}。",
        "cancel_yes": ("该订单现在还可以取消：在订单页点击“取消订单”即可；已付款的会原路退款。"),
        "cancel_no": "该订单已有包裹发出或已结束，无法再取消；收到后可以申请退货。",
        "returns": (
            "签收后 7 天内可申请无理由退货或换货（商品完好、不影响二次销售）；"
            "请在订单页提交售后申请，退款会原路返回。"
        ),
        "pay_pending": "该订单还未付款，请在 {expires_at} 前完成支付，否则订单将自动取消。",
        "pay_done": "该订单的付款已到账，无需再次支付。",
        "pay_closed": "该订单已结束；如有扣款，会原路退回，一般 1-7 个工作日到账。",
        "more": "如需人工客服，请回复“转人工”。",
        "handover": "我是自动助手，已为您转接人工客服，客服会尽快在这里回复您。",
    },
    "en": {
        "intro": "Hello, this is the automated assistant (not a person).",
        "no_order": "I could not find an order of yours. Tell me the order number, "
        "or reply 'human' to reach our support team.",
        "order": "Order {order_id} is {status}.",
        "parcel": "The parcel is with {carrier}, tracking number {tracking_number}.",
        "parcel_waiting": "The parcel has not been handed to a carrier yet.",
        "latest": "Latest update: {at}{place} {description}.",
        "eta": "Estimated delivery: {eta}.",
        "cancel_yes": "This order can still be cancelled: choose 'Cancel order' on the order "
        "page; anything paid is refunded to the original payment method.",
        "cancel_no": "A parcel of this order has left the warehouse or the order is finished, "
        "so it can no longer be cancelled; you can ask for a return once it arrives.",
        "returns": "Items can be returned or exchanged within 7 days of delivery if they are "
        "in their original condition; start a return from the order page and the refund goes "
        "back to the original payment method.",
        "pay_pending": "This order is not paid yet. Please pay before {expires_at}, or it is "
        "cancelled automatically.",
        "pay_done": "We have received the payment for this order; there is nothing more to pay.",
        "pay_closed": "This order is closed; any money taken is refunded to the original "
        "payment method, usually within 1-7 business days.",
        "more": "Reply 'human' if you would like a person from our support team.",
        "handover": "This is the automated assistant: I have passed your conversation to our "
        "support team, and a person will reply here as soon as possible.",
    },
}


def _when(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""


def _where(facts: OrderFacts, text: dict[str, str], words: dict[str, str], zone: ZoneInfo):
    lines = [
        text["order"].format(order_id=facts.order_id, status=words.get(facts.status, facts.status))
    ]
    for parcel in facts.parcels:
        if not parcel.tracking_number:
            lines.append(text["parcel_waiting"])
            continue
        lines.append(
            text["parcel"].format(
                carrier=parcel.carrier or "-", tracking_number=parcel.tracking_number
            )
        )
        if parcel.latest_at is not None:
            place = f" {parcel.latest_place}" if parcel.latest_place else ""
            lines.append(
                text["latest"]
                .format(
                    at=_when(parcel.latest_at, zone),
                    place=place,
                    description=parcel.latest_description or "",
                )
                .replace(" 。", "。")
                .replace(" .", ".")
            )
        if parcel.estimated_delivery is not None:
            lines.append(text["eta"].format(eta=_when(parcel.estimated_delivery, zone)))
    return lines


def answer(
    intent: Intent, language: str, facts: OrderFacts | None, *, time_zone: str = "Asia/Shanghai"
) -> Answer:
    """What the assistant says to ``intent`` about ``facts`` (the order in question)."""
    text = _TEXT.get(language, _TEXT["en"])
    words = _STATUS_WORDS.get(language, _STATUS_WORDS["en"])
    zone = ZoneInfo(time_zone)
    if intent in (Intent.HUMAN, Intent.UNKNOWN):
        return Answer(intent, text["handover"], hand_over=True)
    lines = [text["intro"]]
    if intent is Intent.RETURN_OR_EXCHANGE:
        lines.append(text["returns"])
    elif facts is None:
        lines.append(text["no_order"])
    elif intent is Intent.WHERE_IS_MY_ORDER:
        lines += _where(facts, text, words, zone)
    elif intent is Intent.CANCEL:
        lines.append(
            text["order"].format(
                order_id=facts.order_id, status=words.get(facts.status, facts.status)
            )
        )
        lines.append(text["cancel_yes"] if facts.can_cancel else text["cancel_no"])
    elif intent is Intent.PAYMENT:
        lines.append(
            text["order"].format(
                order_id=facts.order_id, status=words.get(facts.status, facts.status)
            )
        )
        if facts.status == "pending_payment":
            lines.append(text["pay_pending"].format(expires_at=_when(facts.expires_at, zone)))
        elif facts.status in ("cancelled", "expired"):
            lines.append(text["pay_closed"])
        else:
            lines.append(text["pay_done"])
    lines.append(text["more"])
    separator = "" if language == "zh-CN" else " "
    return Answer(intent, separator.join(lines), hand_over=False)
