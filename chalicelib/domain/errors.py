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
