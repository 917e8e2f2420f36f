"""Cold start: a fresh ``import app`` against a fresh import of its runtime dependencies.

Both run as new processes, interleaved so machine noise hits them alike; the figure that
matters is the ratio of medians (target <= 1.2: our own code adds at most a fifth).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15
DEPENDENCIES_ONLY = (
    "import boto3, chalice, pydantic; from aws_lambda_powertools import Logger, Metrics"
)
APP = "import app"


# Dependencies were byte-compiled by pip; let our modules be compiled once too, as they are in
# a Lambda package built with compiled files, so both sides are measured alike.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time_import(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, check=True)
    return time.perf_counter() - started


def main() -> None:
    _time_import(APP)  # warm the OS file cache and write .pyc files first
    _time_import(DEPENDENCIES_ONLY)
    app_times, dependency_times = [], []
    for _ in range(RUNS):
        app_times.append(_time_import(APP))
        dependency_times.append(_time_import(DEPENDENCIES_ONLY))
    app_median = statistics.median(app_times)
    dependency_median = statistics.median(dependency_times)
    print(
        f"cold start: import app {app_median * 1000:.0f} ms, runtime dependencies alone "
        f"{dependency_median * 1000:.0f} ms, ratio {app_median / dependency_median:.2f} "
        f"(median of {RUNS} fresh processes each, target <= 1.2)"
    )


if __name__ == "__main__":
    main()
