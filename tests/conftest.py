"""Shared pytest setup.

* Build output goes under the repository's build/ whatever the working directory.
* Tests marked ``slow`` are sweeps. ``FOCUS_SLOW`` picks how much of them runs: ``subset`` (the
  default, what CI runs) keeps the first ``FOCUS_SLOW_SUBSET`` (default 1) parameter set of each
  slow test, ``all`` runs every one, ``none`` skips them. ``@pytest.mark.slow(subset=False,
  reason=...)`` marks a test (or a parameter set) that runs with ``FOCUS_SLOW=all`` only.
* A test that needs a simulator this machine lacks (focus.tb.runner raises SimulatorUnavailable,
  naming what is missing) is skipped with that message.
"""

import os
from pathlib import Path

import pytest

from focus.tb.toolchain import SimulatorUnavailable

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("FOCUS_BUILD_DIR", str(ROOT / "build"))


def pytest_collection_modifyitems(config, items):
    mode = os.environ.get("FOCUS_SLOW", "subset")
    if mode == "all":
        return
    keep = 0 if mode == "none" else int(os.environ.get("FOCUS_SLOW_SUBSET", "1"))
    seen: dict[str, int] = {}
    skip = pytest.mark.skip(reason=f"slow sweep beyond the CI subset (FOCUS_SLOW={mode}); run with FOCUS_SLOW=all")
    for item in items:
        marker = item.get_closest_marker("slow")
        if marker and not marker.kwargs.get("subset", True):
            item.add_marker(pytest.mark.skip(reason=marker.kwargs["reason"]))
        elif marker:
            key = f"{item.module.__name__}::{item.originalname}"
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > keep:
                item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    except SimulatorUnavailable as err:
        pytest.skip(str(err))
