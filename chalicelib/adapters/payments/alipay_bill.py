"""Alipay's trade bill (``settlement``): the download URL gives a zip of GBK-encoded CSV
files. The detail file ("业务明细") has ``#`` comment lines, one header row and one row per
payment or refund. Columns read here, by header name: 支付宝交易号 (trade_no), 商户订单号
(out_trade_no), 业务类型 (交易 = payment, 退款 = refund), 商品名称, 创建时间, 完成时间,
订单金额（元） (negative on refund rows), 商家实收（元）, 退款批次号/请求号 (out_request_no)
and 服务费（元） (negative when charged, positive when a refund gives it back). Cells may
carry a trailing tab, which Alipay adds to keep spreadsheets from mangling long numbers.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Mapping

from chalicelib.adapters.payments import (
    ALIPAY,
    ProviderError,
    SettlementKind,
    SettlementRecord,
)
from chalicelib.adapters.payments.alipay_fields import CURRENCY, china_time, parse_signed_yuan
from chalicelib.domain.money import Money

MAX_BILL_BYTES = 64 * 1024 * 1024

# Trade bill columns, by their header names.
COL_TRADE_NO = "支付宝交易号"
COL_OUT_TRADE_NO = "商户订单号"
COL_BUSINESS_TYPE = "业务类型"
COL_SUBJECT = "商品名称"
COL_CREATED = "创建时间"
COL_COMPLETED = "完成时间"
COL_ORDER_AMOUNT = "订单金额（元）"
COL_RECEIVED = "商家实收（元）"
COL_REFUND_REQUEST_NO = "退款批次号/请求号"
COL_FEE = "服务费（元）"
_BUSINESS_KINDS = {"交易": SettlementKind.PAYMENT, "退款": SettlementKind.REFUND}


def parse_trade_bill(archive: bytes) -> list[SettlementRecord]:
    """SettlementRecords from a trade bill zip: every detail file's payment and refund
    rows, in file order. Summary files and comment lines are skipped."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as bill:
            members = [info for info in bill.infolist() if not info.is_dir()]
            if sum(info.file_size for info in members) > MAX_BILL_BYTES:
                raise ProviderError("Alipay's bill is too large.", code="invalid_bill")
            texts = [bill.read(info).decode("gb18030") for info in members]
    except (zipfile.BadZipFile, UnicodeDecodeError, KeyError, EOFError):
        raise ProviderError(
            "Alipay's bill is not a readable zip of GBK CSV.", code="invalid_bill"
        ) from None
    records: list[SettlementRecord] = []
    detail_files = 0
    for text in texts:
        rows = _bill_rows(text)
        if rows is None:
            continue
        detail_files += 1
        records.extend(_settlement_record(row) for row in rows)
    if detail_files == 0:
        raise ProviderError("Alipay's bill holds no detail file.", code="invalid_bill")
    return records


def _bill_rows(text: str) -> list[dict[str, str]] | None:
    """The rows of a detail file as ``header -> cell``; ``None`` for any other file."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        return None
    reader = csv.reader(lines)
    header = [cell.strip() for cell in next(reader)]
    if not header or header[0] != COL_TRADE_NO:
        return None
    rows = []
    for cells in reader:
        if len(cells) < len(header):
            raise ProviderError("Alipay's bill has a short row.", code="invalid_bill")
        rows.append({name: cell.strip() for name, cell in zip(header, cells, strict=False)})
    return rows


def _settlement_record(row: Mapping[str, str]) -> SettlementRecord:
    try:
        kind = _BUSINESS_KINDS[row[COL_BUSINESS_TYPE]]
        amount = abs(parse_signed_yuan(row[COL_ORDER_AMOUNT]))
        fee = abs(parse_signed_yuan(row.get(COL_FEE) or "0"))
        received = parse_signed_yuan(row.get(COL_RECEIVED) or "0")
        settled_at = china_time(row[COL_COMPLETED]) if row.get(COL_COMPLETED) else None
        trade_no = row[COL_TRADE_NO]
    except (KeyError, ValueError):
        raise ProviderError(
            "Alipay's bill has a row that cannot be read.", code="invalid_bill"
        ) from None
    if not trade_no or amount == 0:
        raise ProviderError("Alipay's bill has a row without trade or amount.", code="invalid_bill")
    out_trade_no = row.get(COL_OUT_TRADE_NO) or None
    reference = (
        out_trade_no if kind is SettlementKind.PAYMENT else row.get(COL_REFUND_REQUEST_NO) or None
    )
    return SettlementRecord(
        provider=ALIPAY,
        kind=kind,
        reference=reference,
        provider_reference=trade_no,
        amount=Money(amount, CURRENCY),
        fee=Money(fee, CURRENCY),
        settled_at=settled_at,
        details={
            "out_trade_no": out_trade_no,
            "business_type": row[COL_BUSINESS_TYPE],
            "subject": row.get(COL_SUBJECT, ""),
            "created_at": row.get(COL_CREATED, ""),
            "merchant_received": received,
        },
    )
