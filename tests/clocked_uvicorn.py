"""Runs uvicorn on the test session's clock: wall-clock time starts at
``HEALTHCODE_TEST_CLOCK_START`` (Unix seconds, the test's clock when it started
this process) and ticks, so that a live server and the test talking to it agree
on the time, whatever the date the suite runs at. The start-up time of this
process (which on a busy machine takes seconds) is added from the system-wide
monotonic clock, ``HEALTHCODE_TEST_CLOCK_MONOTONIC`` being the test's reading
at the start instant; an implausible difference (a faked monotonic clock) is
ignored. An absolute start, not an offset from this process's own clock: under
libfaketime's ``@`` syntax every process's clock starts at the faked instant.

Usage (from ``tests/conftest.py``): ``python tests/clocked_uvicorn.py ARGS``,
with the same arguments as ``uvicorn``."""

from __future__ import annotations

import os
import time

import time_machine
import uvicorn.main

MAX_START_UP_S = 300.0


def _start() -> float:
    start = float(os.environ["HEALTHCODE_TEST_CLOCK_START"])
    then = os.environ.get("HEALTHCODE_TEST_CLOCK_MONOTONIC")
    if then:
        start_up = time.monotonic() - float(then)
        if 0.0 <= start_up <= MAX_START_UP_S:
            start += start_up
    return start


if __name__ == "__main__":
    time_machine.travel(_start(), tick=True).start()
    # time-machine's clock starts ticking at the first call of a time function,
    # not when travel starts: without this call the seconds that importing the
    # service takes would be lost, and the server's clock would lag the test's.
    time.time()
    uvicorn.main.main()
