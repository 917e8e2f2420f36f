"""The Alipay emulator's trade bill: for a day in China time, a zip of two GBK CSV files,
the detail ("业务明细", a row per payment or refund, cells that hold long numbers ending in
a tab) and its summary ("业务明细(汇总)"), each framed by Alipay's ``#`` comment lines; the
entry names are GBK bytes without the UTF-8 flag, as in Alipay's archives.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from infra.local.emulators.alipay_requests import TIME_FORMAT
from infra.local.emulators.cny import yuan

if TYPE_CHECKING:
    from infra.local.emulators.alipay import Refund, Trade

SERVICE_FEE_PER_MILLE = 6  # Alipay's standard 0.6% rate
BILL_HEADER = [
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
]
SUMMARY_HEADER = [
    "门店编号",
    "门店名称",
    "交易订单总笔数",
    "退款订单总笔数",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "卡消费金额（元）",
    "服务费（元）",
    "分润（元）",
    "实收净额（元）",
]


def bill_zip(
    trades: Iterable[Trade], day: date, *, seller_id: str, clock: Callable[[], datetime]
) -> bytes:
    """The day's trade bill: a zip of the detail file and its summary, GBK CSV."""
    rows: list[tuple[datetime, list[str]]] = []
    for trade in trades:
        if trade.paid_at is not None and trade.paid_at.date() == day:
            rows.append((trade.paid_at, _bill_row(trade, None)))
        for refund in trade.refunds.values():
            if refund.at.date() == day:
                rows.append((refund.at, _bill_row(trade, refund)))
    rows.sort(key=lambda item: item[0])
    stem = f"{seller_id}_{day:%Y%m%d}"
    detail = _bill_detail(day, [row for _, row in rows], clock(), seller_id)
    summary = _bill_summary(day, [row for _, row in rows], clock(), seller_id)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (
            (f"{stem}_业务明细.csv", detail),
            (f"{stem}_业务明细(汇总).csv", summary),
        ):
            entry = _GbkNamedEntry(name, date_time=clock().timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            # Characters GBK lacks (emoji in a subject) become "?".
            archive.writestr(entry, text.encode("gbk", errors="replace"))
    return buffer.getvalue()


def fee(fen: int) -> int:
    return (fen * SERVICE_FEE_PER_MILLE + 500) // 1000  # half up, in fen


class _GbkNamedEntry(zipfile.ZipInfo):
    """A zip entry whose name is stored as GBK bytes without the UTF-8 flag, as in
    Alipay's bill archives (readers that assume cp437 show it garbled)."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def _bill_row(trade: Trade, refund: Refund | None) -> list[str]:
    assert trade.paid_at is not None
    if refund is None:
        kind, amount, fee, request_no, done = (
            "交易",
            trade.total_fen,
            -trade.fee_fen,
            "",
            trade.paid_at,
        )
    else:
        kind, amount, fee, request_no, done = (
            "退款",
            -refund.amount_fen,
            refund.fee_back_fen,
            refund.out_request_no,
            refund.at,
        )
    cells = {name: "0.00" if name.endswith("（元）") else "" for name in BILL_HEADER}
    cells.update(
        {
            "支付宝交易号": trade.trade_no + "\t",
            "商户订单号": trade.out_trade_no + "\t",
            "业务类型": kind,
            "商品名称": trade.subject,
            "创建时间": trade.created_at.strftime(TIME_FORMAT),
            "完成时间": done.strftime(TIME_FORMAT),
            "对方账户": trade.buyer_logon_id,
            "订单金额（元）": yuan(amount),
            "商家实收（元）": yuan(amount),
            "退款批次号/请求号": request_no + "\t" if request_no else "",
            "服务费（元）": yuan(fee),
        }
    )
    return [cells[name] for name in BILL_HEADER]


def _bill_period(day: date) -> str:
    end = day + timedelta(days=1)
    return f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{end:%Y年%m月%d日} 00:00:00]"


def _csv_lines(rows: list[list[str]]) -> list[str]:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().splitlines()


def _bill_detail(day: date, rows: list[list[str]], now: datetime, seller_id: str) -> str:
    payments = [row for row in rows if row[2] == "交易"]
    refunds = [row for row in rows if row[2] == "退款"]
    received = BILL_HEADER.index("商家实收（元）")
    paid_total = sum(_signed_fen(row[received]) for row in payments)
    refunded_total = sum(_signed_fen(row[received]) for row in refunds)
    lines = [
        "#支付宝业务明细查询",
        f"#账号：[{seller_id}0156]",
        _bill_period(day),
        "#-----------------------------------------业务明细列表----------------------------------------",
        *_csv_lines([BILL_HEADER, *rows]),
        "#-----------------------------------------业务明细列表结束------------------------------------",
        f"#交易合计：{len(payments)}笔，商家实收共{yuan(paid_total)}元，商家优惠共0.00元",
        f"#退款合计：{len(refunds)}笔，商家实收退款共{yuan(refunded_total)}元，商家优惠退款共0.00元",
        f"#导出时间：[{now:%Y年%m月%d日 %H:%M:%S}]",
    ]
    return "\r\n".join(lines) + "\r\n"


def _bill_summary(day: date, rows: list[list[str]], now: datetime, seller_id: str) -> str:
    amount = BILL_HEADER.index("订单金额（元）")
    fee = BILL_HEADER.index("服务费（元）")
    total = sum(_signed_fen(row[amount]) for row in rows)
    fees = sum(_signed_fen(row[fee]) for row in rows)
    payments = sum(1 for row in rows if row[2] == "交易")
    totals = ["合计", "", str(payments), str(len(rows) - payments), yuan(total), yuan(total)]
    totals += ["0.00", "0.00", "0.00", yuan(fees), "0.00", yuan(total + fees)]
    lines = [
        "#支付宝业务汇总查询",
        f"#账号：[{seller_id}0156]",
        _bill_period(day),
        "#-----------------------------------------业务汇总列表----------------------------------------",
        *_csv_lines([SUMMARY_HEADER, totals]),
        "#-----------------------------------------业务汇总列表结束------------------------------------",
        f"#导出时间：[{now:%Y年%m月%d日 %H:%M:%S}]",
    ]
    return "\r\n".join(lines) + "\r\n"


def _signed_fen(text: str) -> int:
    """Fen from a bill cell this emulator wrote ("-12.30", "0.00")."""
    major, _, minor = text.lstrip("-").partition(".")
    fen = int(major) * 100 + int(minor.ljust(2, "0"))
    return -fen if text.startswith("-") else fen
