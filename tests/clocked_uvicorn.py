"""Runs uvicorn on the test session's clock: the machine's wall-clock time
shifted by ``HEALTHCODE_TEST_CLOCK_OFFSET`` seconds, so that a live server and
the test talking to it agree on the time, whatever the date the suite runs at.

Usage (from ``tests/conftest.py``): ``python tests/clocked_uvicorn.py ARGS``,
with the same arguments as ``uvicorn``."""

from __future__ import annotations

import os
import time

import time_machine
import uvicorn.main

if __name__ == "__main__":
    offset = float(os.environ["HEALTHCODE_TEST_CLOCK_OFFSET"])
    time_machine.travel(time.time() + offset, tick=True).start()
    uvicorn.main.main()
