"""Suite-wide test scheduling.

``make test`` runs two pytest-xdist workers. The tests that talk to the local stack (e2e and
browser) are scheduled as one unit, so a single worker starts one stack for all of them, while
the other worker runs the in-process tests beside it, a file at a time (module fixtures such as
the packaged templates are then built once).
"""

from __future__ import annotations

from typing import Any

import pytest

STACK_TEST_DIRS = ("tests/e2e/", "tests/browser/")
# A test that may change any shared resource it can reach (the contract test fuzzes every
# operation with a staff token) runs after every other test on its stack.
RUNS_LAST = "alters_shared_data"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker(RUNS_LAST) is not None)


def pytest_xdist_make_scheduler(config: Any, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class StackTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "local-stack" if nodeid.startswith(STACK_TEST_DIRS) else nodeid.split("::")[0]

    return StackTestsTogether(config, log)
