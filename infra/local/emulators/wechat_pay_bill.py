"""The WeChat Pay emulator's trade bill file (``bill_type`` ALL, SUCCESS or REFUND) for a
day in China time, as WeChat Pay writes it: one header, a row per payment or refund with
every cell behind a backtick, then a summary header and the day's sums; amounts in yuan.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING

from infra.local.emulators.cny import yuan

if TYPE_CHECKING:
    from infra.local.emulators.wechat_pay import Order, Refund

FEE_RATE_PER_MILLE = 6  # 0.60%, the usual Native rate
BILL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注"
)
BILL_SUMMARY_HEADER = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)


def trade_bill(
    orders: Iterable[Order], refunds: Iterable[Refund], day: date, bill_type: str = "ALL"
) -> bytes | None:
    """The day's trade bill (China time) as WeChat Pay writes it; None when empty."""
    rows: list[tuple[datetime, list[str], dict[str, int]]] = []
    if bill_type in ("ALL", "SUCCESS"):
        for order in orders:
            if order.success_time and order.success_time.date() == day:
                rows.append(_payment_row(order))
    if bill_type in ("ALL", "REFUND"):
        for record in refunds:
            if record.success_time and record.success_time.date() == day:
                rows.append(_refund_row(record))
    if not rows:
        return None
    rows.sort(key=lambda row: row[0])
    sums = {key: sum(row[2][key] for row in rows) for key in rows[0][2]}
    lines = [BILL_HEADER]
    lines += ["`" + ",`".join(fields) for _, fields, _ in rows]
    lines.append(BILL_SUMMARY_HEADER)
    summary = [
        str(len(rows)),
        yuan(sums["settlement"]),
        yuan(sums["refund"]),
        "0.00",
        yuan(sums["fee"]),
        yuan(sums["order"]),
        yuan(sums["requested_refund"]),
    ]
    lines.append("`" + ",`".join(summary))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _payment_row(order: Order) -> tuple[datetime, list[str], dict[str, int]]:
    assert order.success_time is not None and order.paid_total is not None
    fee = _fee(order.paid_total)
    fields = [
        order.success_time.strftime("%Y-%m-%d %H:%M:%S"),
        order.appid,
        order.mchid,
        "0",
        "",
        order.transaction_id or "",
        order.out_trade_no,
        order.payer_openid or "",
        "NATIVE",
        "SUCCESS",
        "OTHERS",
        "CNY",
        yuan(order.paid_total),
        "0.00",
        "0",
        "0",
        "0.00",
        "0.00",
        "",
        "",
        _bill_text(order.description),
        "",
        yuan(fee),
        "0.60%",
        yuan(order.paid_total),
        "0.00",
        "",
    ]
    sums = {
        "settlement": order.paid_total,
        "refund": 0,
        "fee": fee,
        "order": order.paid_total,
        "requested_refund": 0,
    }
    return order.success_time, fields, sums


def _refund_row(record: Refund) -> tuple[datetime, list[str], dict[str, int]]:
    order = record.order
    assert record.success_time is not None
    fee_returned = _fee(record.refund)
    fields = [
        record.success_time.strftime("%Y-%m-%d %H:%M:%S"),
        order.appid,
        order.mchid,
        "0",
        "",
        order.transaction_id or "",
        order.out_trade_no,
        order.payer_openid or "",
        "NATIVE",
        "REFUND",
        "OTHERS",
        "CNY",
        "0.00",
        "0.00",
        record.refund_id,
        record.out_refund_no,
        yuan(record.refund),
        "0.00",
        "ORIGINAL",
        "SUCCESS",
        _bill_text(order.description),
        "",
        yuan(-fee_returned),
        "0.60%",
        "0.00",
        yuan(record.refund),
        "",
    ]
    sums = {
        "settlement": 0,
        "refund": record.refund,
        "fee": -fee_returned,
        "order": 0,
        "requested_refund": record.refund,
    }
    return record.success_time, fields, sums


def _fee(fen: int) -> int:
    return (fen * FEE_RATE_PER_MILLE + 500) // 1000  # half up, in fen


def _bill_text(text: str) -> str:
    # Keep a free-text field inside its column and on its line.
    return " ".join(text.replace("`", "'").split())
