"""Liveness and readiness probes (never shed, never rate-limited)."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.datastructures import State

import healthcode
from healthcode.api.problems import COMMON_RESPONSES
from healthcode.api.wire import Readiness
from healthcode.core.storage.database import Database


class LiveHealth(msgspec.Struct, kw_only=True):
    """``GET /health/live``: the process is up."""

    status: str
    version: str
    demo: bool
    """True only on an instance started with ``healthcode serve --demo``
    (``HEALTHCODE_DEMO=1``): ``healthcode demo`` refuses any other."""


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get("/live", operation_id="liveness", responses=COMMON_RESPONSES)
    async def live(self, state: State) -> LiveHealth:
        """The process is up; ``demo`` says whether this is a demo instance."""
        settings = state.get("settings")
        return LiveHealth(
            status="ok",
            version=healthcode.__version__,
            demo=bool(getattr(settings, "demo", False)),
        )

    @get("/ready", operation_id="readiness", responses=COMMON_RESPONSES)
    async def ready(self, state: State) -> Readiness:
        """The database answers and its schema is current (503 otherwise)."""
        db: Database = state.db
        await db.check_schema()
        return Readiness(status="ready", backend=db.backend)
