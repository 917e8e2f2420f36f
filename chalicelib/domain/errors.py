"""Domain errors: raised by rules, carrying what a client needs to hear.

The API layer maps each class to an HTTP status in one place (``api/errors.py``); the
``code`` is the stable machine-readable name clients see in ``{"error": code}``.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "conflict"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    code = "not_found"


class InvalidInput(DomainError):
    """Input that passed the schema but breaks a rule (e.g. an unknown reference)."""

    code = "validation_error"


class Conflict(DomainError):
    code = "conflict"


class ServiceUnavailable(DomainError):
    """Something the request needs is not available (e.g. not configured): HTTP 503."""

    code = "service_unavailable"


class Forbidden(DomainError):
    """The caller may not do this to this thing (HTTP 403)."""

    code = "forbidden"


class Gone(DomainError):
    """Something that existed and can no longer be used (HTTP 410)."""

    code = "gone"


class TooManyRequests(DomainError):
    """The caller asked for more than a limit allows (HTTP 429, with ``Retry-After`` when
    ``retry_after_seconds`` says how long until it would be allowed)."""

    code = "rate_limited"

    def __init__(
        self, message: str, details: Any = None, *, retry_after_seconds: int | None = None
    ) -> None:
        super().__init__(message, details)
        self.retry_after_seconds = (
            None if retry_after_seconds is None else max(1, int(retry_after_seconds))
        )


class OutOfStock(Conflict):
    """An order asks for more than the warehouses can give it.

    ``details`` names every short SKU: ``[{"sku", "requested", "available"}]`` where
    ``available`` is the total across all warehouses.
    """

    code = "out_of_stock"

    def __init__(self, message: str | None = None, details: list[dict[str, Any]] | None = None):
        shortages = list(details or [])
        if message is None:
            named = ", ".join(
                f"{s['sku']} (requested {s['requested']}, available {s['available']})"
                for s in shortages
            )
            message = f"Not enough stock for: {named}." if named else "Not enough stock."
        super().__init__(message, shortages)

    @property
    def shortages(self) -> list[dict[str, Any]]:
        return self.details


class Busy(DomainError):
    """The store is too contended to finish now; nothing was written, the client may retry
    after ``retry_after_seconds`` (HTTP 503 with ``Retry-After``).

    Never a statement about stock: a conflict or a throttle is not a shortage.
    """

    code = "busy"

    def __init__(self, message: str, details: Any = None, *, retry_after_seconds: int = 1) -> None:
        super().__init__(message, details)
        self.retry_after_seconds = max(1, int(retry_after_seconds))


class InsufficientStock(Conflict):
    """A single stock movement would take a (SKU, warehouse) level below zero."""

    code = "insufficient_stock"


class InvalidTransition(Conflict):
    """A status change the state machine does not allow; ``details`` is ``{"from", "to"}``."""

    code = "invalid_transition"

    def __init__(self, message: str | None = None, details: dict[str, Any] | None = None):
        details = dict(details or {})
        if message is None:
            message = f"Cannot move from {details.get('from')} to {details.get('to')}."
        super().__init__(message, details)

    @classmethod
    def between(cls, current: str, to: str, why: str | None = None) -> InvalidTransition:
        message = f"Cannot move from {current} to {to}" + (f": {why}." if why else ".")
        return cls(message, {"from": str(current), "to": str(to)})


class UnknownSku(InvalidInput):
    """Lines name SKUs that do not exist or are not for sale; ``details`` lists each one."""

    code = "unknown_sku"

    def __init__(self, skus: list[str], message: str | None = None) -> None:
        self.skus = list(skus)
        if message is None:
            message = f"Unknown or inactive SKU: {', '.join(self.skus)}."
        super().__init__(message, [{"sku": sku} for sku in self.skus])


class IdempotencyKeyReused(DomainError):
    """The same Idempotency-Key arrived with a different request body (HTTP 422)."""

    code = "idempotency_key_reused"

    def __init__(
        self,
        message: str = "This Idempotency-Key was already used with a different request.",
        details: Any = None,
    ) -> None:
        super().__init__(message, details)


class CarrierUnavailable(DomainError):
    """The booking provider could not be reached or failed on its side (502); the booking
    is retried on a schedule. ``details`` carries the provider and its message."""

    code = "carrier_unavailable"


class CarrierRefused(Conflict):
    """The booking provider refused the parcel with its own message (409)."""

    code = "carrier_refused"


class WarehouseIncomplete(Conflict):
    """The warehouse lacks what a carrier needs to collect from it (409); ``details``
    names the missing fields."""

    code = "warehouse_incomplete"
