"""Runs uvicorn on the test session's clock: wall-clock time starts at
``HEALTHCODE_TEST_CLOCK_START`` (Unix seconds, the test's clock when it started
this process) and ticks, so that a live server and the test talking to it agree
on the time (within this process's start-up), whatever the date the suite runs
at. An absolute start, not an offset from this process's own clock: under
libfaketime's ``@`` syntax every process's clock starts at the faked instant.

Usage (from ``tests/conftest.py``): ``python tests/clocked_uvicorn.py ARGS``,
with the same arguments as ``uvicorn``."""

from __future__ import annotations

import os

import time_machine
import uvicorn.main

if __name__ == "__main__":
    time_machine.travel(float(os.environ["HEALTHCODE_TEST_CLOCK_START"]), tick=True).start()
    uvicorn.main.main()
