"""Packages whose modules load on first use, so a cold start pays only for what it runs.

``chalicelib.services`` (use cases) and ``chalicelib.store`` (repositories) set their
module ``__getattr__`` to ``submodules_on_first_use(__name__)``. Then
``from chalicelib.services import orders`` binds a stand-in, and
``chalicelib.services.orders`` is imported the first time one of its attributes is read
(or set): routes and handlers are declared at ``import app`` without loading the use cases
behind them. ``tests/unit/test_cold_start.py`` checks what ``import app`` still loads.

Importing a name from such a module (``from chalicelib.services.orders import CURRENCY``)
loads it at once, as usual; so a route module takes the bounds its request models need
from ``chalicelib.domain`` (e.g. ``domain.paging``), not from a service.
"""

from __future__ import annotations

import importlib
import importlib.util
import types
from collections.abc import Callable
from typing import Any


class DeferredModule(types.ModuleType):
    """Stands in for a module until it is used; every access goes to the real module.

    The import system's per-module locks make the first load safe across threads.
    """

    def _module(self) -> types.ModuleType:
        return importlib.import_module(object.__getattribute__(self, "__name__"))

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._module(), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._module(), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self._module(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._module())

    @property  # type: ignore[misc]
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
        # Tools that read and restore a module's namespace (pytest's monkeypatch) see the
        # real one, so what they put back lands where the code reads it.
        return self._module().__dict__


def submodules_on_first_use(package: str) -> Callable[[str], types.ModuleType]:
    """A package ``__getattr__`` answering ``from package import name`` with a stand-in."""

    def __getattr__(name: str) -> types.ModuleType:
        # Reached only while ``package.name`` is not imported yet (once it is, the import
        # system sets it on the package and this is no longer asked).
        if name.startswith("_") or importlib.util.find_spec(f"{package}.{name}") is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return DeferredModule(f"{package}.{name}")

    return __getattr__
