"""Where the test data lives, and the day and instant every test's clock starts at."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
"""The repository checkout."""
TEST_DATA = TESTS / "data"
FACES = TEST_DATA / "faces"
"""Real photos of faces (origin and licence in ``tests/data/README.md``)."""
DOCUMENTS = TEST_DATA / "documents"
ANTISPOOF = TEST_DATA / "antispoof"

TODAY = dt.date(2026, 11, 26)
"""The day the test clock starts on (Asia/Shanghai)."""
CLOCK_START = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
"""Where every test's clock starts: 10:00 on ``TODAY`` in Asia/Shanghai."""
