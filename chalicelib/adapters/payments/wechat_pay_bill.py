"""WeChat Pay's trade bill (``bill_type=ALL``): the one answer WeChat Pay does not sign, so
the adapter checks the downloaded bytes against the SHA1 the signed bill answer carries, then
reads the rows here. Columns are read by their header names, not positions, because WeChat
Pay has appended columns over the years.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from chalicelib.adapters.payments import (
    WECHAT_PAY,
    ProviderError,
    SettlementKind,
    SettlementRecord,
)
from chalicelib.adapters.payments.wechat_pay_fields import PROVIDER_ID, same_text
from chalicelib.domain.money import Money
from chalicelib.domain.time_zones import CHINA_TIME

YUAN = re.compile(r"(-?)(\d{1,13})\.(\d{2})")
CURRENCY_CODE = re.compile(r"[A-Z]{3}")

# The trade bill (bill_type=ALL) columns we read, by their header names: names rather than
# positions, because WeChat Pay has appended columns over the years.
BILL_TRADE_TIME = "交易时间"
BILL_APPID = "公众账号ID"
BILL_MCHID = "商户号"
BILL_TRANSACTION_ID = "微信订单号"
BILL_OUT_TRADE_NO = "商户订单号"
BILL_TRADE_TYPE = "交易类型"
BILL_TRADE_STATE = "交易状态"
BILL_CURRENCY = "货币种类"
BILL_SETTLEMENT_TOTAL = "应结订单金额"  # what settles for a payment: total less vouchers
BILL_REFUND_ID = "微信退款单号"
BILL_OUT_REFUND_NO = "商户退款单号"
BILL_REFUND = "退款金额"  # what settles for a refund
BILL_REFUND_STATUS = "退款状态"
BILL_FEE = "手续费"  # charged on a payment, handed back (negative) on a refund
BILL_RATE = "费率"
BILL_ORDER_TOTAL = "订单金额"
BILL_REQUESTED_REFUND = "申请退款金额"
BILL_COLUMNS = (
    BILL_TRADE_TIME,
    BILL_APPID,
    BILL_MCHID,
    BILL_TRANSACTION_ID,
    BILL_OUT_TRADE_NO,
    BILL_TRADE_TYPE,
    BILL_TRADE_STATE,
    BILL_CURRENCY,
    BILL_SETTLEMENT_TOTAL,
    BILL_REFUND_ID,
    BILL_OUT_REFUND_NO,
    BILL_REFUND,
    BILL_REFUND_STATUS,
    BILL_FEE,
    BILL_RATE,
    BILL_ORDER_TOTAL,
    BILL_REQUESTED_REFUND,
)
BILL_SUMMARY_COUNT = "总交易单数"  # first header of the summary lines after the rows


# --- the trade bill --------------------------------------------------------------------------


def _bill_error(message: str) -> ProviderError:
    return ProviderError(f"The WeChat Pay bill is malformed: {message}", code="invalid_bill")


def _fen(text: str, column: str) -> int:
    """A bill amount in yuan with two decimals (``12.30``, ``-0.07``), as integer fen."""
    match = YUAN.fullmatch(text)
    if match is None:
        raise _bill_error(f"{column} {text!r} is not an amount")
    sign, yuan, fen = match.groups()
    value = int(yuan) * 100 + int(fen)
    return -value if sign else value


def _bill_fields(line: str) -> list[str]:
    # Every field starts with a backtick (so spreadsheets keep long numbers as text); split
    # on ",`" so that a comma inside a product name does not shift the columns.
    if not line.startswith("`"):
        raise _bill_error("a line does not start with a backtick")
    return line[1:].split(",`")


def parse_trade_bill(content: bytes, *, mchid: str) -> list[SettlementRecord]:
    """The records of a ``bill_type=ALL`` trade bill: one per SUCCESS (payment) row and one
    per REFUND row, amounts in fen, ``settled_at`` in China time. Other rows (REVOKED) count
    toward the summary but settle nothing.

    Columns read (by header name): 交易时间 (settled_at), 商户号 (must be ours), 微信订单号,
    商户订单号, 交易状态, 货币种类, 应结订单金额 (a payment's amount), 微信退款单号, 商户退款单号,
    退款金额 (a refund's amount), 退款状态, 手续费 (fee, as a positive amount: charged on a
    payment, returned on a refund), and 公众账号ID, 交易类型, 费率, 订单金额, 申请退款金额 into
    ``details``. The summary's 总交易单数 must equal the number of rows.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _bill_error("not UTF-8") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise _bill_error("empty file")
    header = [name.strip() for name in lines[0].split(",")]
    missing = [name for name in BILL_COLUMNS if name not in header]
    if missing:
        raise _bill_error(f"missing columns {', '.join(missing)}")
    column = {name: header.index(name) for name in BILL_COLUMNS}
    records: list[SettlementRecord] = []
    rows = 0
    index = 1
    while index < len(lines) and not lines[index].startswith(BILL_SUMMARY_COUNT):
        fields = _bill_fields(lines[index])
        if len(fields) != len(header):
            raise _bill_error(f"line {index + 1} has {len(fields)} fields, not {len(header)}")
        row = {name: fields[position].strip() for name, position in column.items()}
        if not same_text(row[BILL_MCHID], mchid):
            raise _bill_error(f"line {index + 1} belongs to another merchant")
        record = _bill_record(row, index + 1)
        if record is not None:
            records.append(record)
        rows += 1
        index += 1
    if index + 1 >= len(lines):
        raise _bill_error("the summary lines are missing")
    summary_header = [name.strip() for name in lines[index].split(",")]
    summary = _bill_fields(lines[index + 1])
    if len(summary) != len(summary_header):
        raise _bill_error("the summary line does not match its header")
    count = summary[summary_header.index(BILL_SUMMARY_COUNT)].strip()
    if not count.isdigit() or int(count) != rows:
        raise _bill_error(f"the summary counts {count} rows, the file holds {rows}")
    return records


def _bill_record(row: dict[str, str], line: int) -> SettlementRecord | None:
    state = row[BILL_TRADE_STATE]
    if state not in ("SUCCESS", "REFUND"):
        return None
    currency = row[BILL_CURRENCY]
    if not CURRENCY_CODE.fullmatch(currency):
        raise _bill_error(f"line {line} has no currency")
    try:
        settled_at = datetime.strptime(row[BILL_TRADE_TIME], "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=CHINA_TIME
        )
        fee = Money(abs(_fen(row[BILL_FEE], BILL_FEE)), currency)
    except ValueError:
        raise _bill_error(f"line {line} has a malformed time") from None
    details: dict[str, Any] = {
        "appid": row[BILL_APPID],
        "trade_type": row[BILL_TRADE_TYPE],
        "rate": row[BILL_RATE],
    }
    if state == "SUCCESS":
        transaction_id = row[BILL_TRANSACTION_ID]
        if not PROVIDER_ID.fullmatch(transaction_id):
            raise _bill_error(f"line {line} has no transaction id")
        details["order_total"] = _fen(row[BILL_ORDER_TOTAL], BILL_ORDER_TOTAL)
        amount = _fen(row[BILL_SETTLEMENT_TOTAL], BILL_SETTLEMENT_TOTAL)
        kind, reference, provider_reference = (
            SettlementKind.PAYMENT,
            row[BILL_OUT_TRADE_NO] or None,
            transaction_id,
        )
    else:
        refund_id = row[BILL_REFUND_ID]
        if not PROVIDER_ID.fullmatch(refund_id) or refund_id == "0":
            raise _bill_error(f"line {line} has no refund id")
        details.update(
            out_trade_no=row[BILL_OUT_TRADE_NO],
            transaction_id=row[BILL_TRANSACTION_ID],
            refund_status=row[BILL_REFUND_STATUS],
            requested_refund=_fen(row[BILL_REQUESTED_REFUND], BILL_REQUESTED_REFUND),
        )
        amount = _fen(row[BILL_REFUND], BILL_REFUND)
        kind, reference, provider_reference = (
            SettlementKind.REFUND,
            row[BILL_OUT_REFUND_NO] or None,
            refund_id,
        )
    if amount < 0:
        raise _bill_error(f"line {line} has a negative amount")
    return SettlementRecord(
        provider=WECHAT_PAY,
        kind=kind,
        reference=reference,
        provider_reference=provider_reference,
        amount=Money(amount, currency),
        fee=fee,
        settled_at=settled_at,
        details=details,
    )
