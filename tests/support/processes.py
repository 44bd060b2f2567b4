"""Starting helper processes from the tests."""

from __future__ import annotations

from collections.abc import Mapping


def without_libfaketime(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without libfaketime, for a helper process whose clock is no part
    of what a test checks (a Redis server, an HTTP test client). Under
    ``faketime`` (the suite's second run) such processes can hang: redis-server
    does not start, and a thread's timed wait in Python may wait for ever."""
    kept = {k: v for k, v in env.items() if not k.startswith("FAKETIME")}
    preload = [p for p in env.get("LD_PRELOAD", "").split(":") if p and "faketime" not in p]
    if preload:
        kept["LD_PRELOAD"] = ":".join(preload)
    else:
        kept.pop("LD_PRELOAD", None)
    return kept
