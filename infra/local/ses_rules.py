"""What SES refuses and moto 5.2 lets through, refused here too.

SES sends a message with a configuration set only if that set exists in the account and
region: ``SendEmail`` / ``SendRawEmail`` naming an unknown ``ConfigurationSetName`` fail with
``ConfigurationSetDoesNotExist``. moto ignores the parameter, so a stack that forgot to
create its set would send locally and fail in AWS. ``install()`` / ``remove()`` swap moto's
two handlers for checking ones; ``infra/local/aws_emulator.py`` does so while an emulator
runs (and in-process tests through its ``flat_transactions``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from moto.ses.exceptions import ConfigurationSetDoesNotExist
from moto.ses.responses import EmailResponse

_HANDLERS = ("send_email", "send_raw_email")
_originals: dict[str, Callable[..., Any]] = {
    name: getattr(EmailResponse, name) for name in _HANDLERS
}


def _requires_known_configuration_set(handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def checked(self: EmailResponse) -> Any:
        name = self._get_param("ConfigurationSetName")
        if name and name not in self.backend.config_sets:
            raise ConfigurationSetDoesNotExist(f"Configuration set <{name}> does not exist.")
        return handler(self)

    return checked


def install() -> None:
    for name, handler in _originals.items():
        setattr(EmailResponse, name, _requires_known_configuration_set(handler))


def remove() -> None:
    for name, handler in _originals.items():
        setattr(EmailResponse, name, handler)
