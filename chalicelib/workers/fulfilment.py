"""The fulfilment queue: ``order.paid`` releases the order's shipments to their warehouses,
``refund.pending`` sends a refund the system owes to its provider, ``after_sales.received``
ships an exchange's replacement, and ``payment.refunded`` marks the after-sales request that
owed the refund ``refunded``.

Records are handled one by one (Powertools ``BatchProcessor``); failed ones come back in
``batchItemFailures`` and one that keeps failing ends in the dead-letter queue while the
rest of its batch is done. Releasing is idempotent, so a message delivered twice, or the
same event sent twice, releases each shipment once; a refund is asked for by its own id
and settles once, so sending it again cannot refund twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint
from chalice.app import SQSEvent

from chalicelib.observability import logger
from chalicelib.services import after_sales, after_sales_parcels, fulfilment, refunds
from chalicelib.store import outbox
from chalicelib.workers import batches

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

blueprint = Blueprint(__name__)

# The queue's name as infra/resources.yaml declares it (Metadata.SqsEventSources).
QUEUE = "fulfilment"
BATCH_SIZE = 10
ORDER_PAID = "order.paid"
AFTER_SALES_RECEIVED = "after_sales.received"


def _handle_record(record: SQSRecord) -> None:
    try:
        event = outbox.event_from_message(record.body)
        order_id = event.payload.get("order_id")
        logger.append_keys(event_id=event.event_id, event_type=event.type, order_id=order_id)
        if event.type == refunds.REFUND_PENDING:
            refund_id = event.payload.get("refund_id")
            if not isinstance(refund_id, str):
                raise outbox.MalformedMessage("refund.pending without a refund_id")
            refunds.send_refund(refund_id)
            return
        if event.type == AFTER_SALES_RECEIVED:
            request_id = event.payload.get("request_id")
            if not isinstance(request_id, str):
                raise outbox.MalformedMessage("after_sales.received without a request_id")
            after_sales_parcels.ship_replacement(request_id)
            return
        if event.type == refunds.PAYMENT_REFUNDED:
            refund_id = event.payload.get("refund_id")
            if not isinstance(order_id, str) or not isinstance(refund_id, str):
                raise outbox.MalformedMessage("payment.refunded without order and refund ids")
            after_sales.on_refund_settled(order_id, refund_id)
            return
        if event.type != ORDER_PAID:
            return  # not ours to act on
        if not isinstance(order_id, str):
            raise outbox.MalformedMessage("order.paid without an order_id")
        fulfilment.release_paid_order(order_id)
    except Exception:
        logger.exception("fulfilment message failed")
        raise


@blueprint.on_sqs_message(queue=QUEUE, batch_size=BATCH_SIZE)
def fulfil_orders(event: SQSEvent) -> dict[str, Any]:
    return batches.each_record(event, _handle_record)
