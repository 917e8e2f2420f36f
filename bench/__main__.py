"""Run every benchmark module in this package in turn: ``python -m bench``.

A benchmark is any ``bench/<name>.py`` with a ``main()`` that prints its figures. They run in
name order; one that fails is reported and the others still run (exit status 1 at the end).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback
from pathlib import Path


def benchmark_names() -> list[str]:
    package_dir = Path(__file__).resolve().parent
    return sorted(
        module.name
        for module in pkgutil.iter_modules([str(package_dir)])
        if not module.name.startswith("_") and not module.ispkg
    )


def main() -> int:
    failed: list[str] = []
    for name in benchmark_names():
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "main", None)
        if run is None:
            continue
        print(f"== {name}", flush=True)
        try:
            run()
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
        sys.stdout.flush()
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
