"""Shared fixtures. Third-party plugins installed on the machine are kept out
of the test session: only the built-ins (and throwaway test plugins) load."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pluggy
import pytest

os.environ["HEALTHCODE_DISABLE_PLUGIN_AUTOLOAD"] = "1"

from healthcode.core.plugins import get_plugin_manager, new_plugin_manager

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TODAY = dt.date(2026, 11, 26)


@pytest.fixture
def pm() -> pluggy.PluginManager:
    """A fresh manager with the built-in plugins only."""
    return new_plugin_manager(autoload=False)


@pytest.fixture(autouse=True)
def _fresh_global_manager() -> None:
    # Tests that register throwaway plugins on the cached manager must not
    # leak them into other tests.
    get_plugin_manager.cache_clear()


@pytest.fixture
def today() -> dt.date:
    return TODAY
