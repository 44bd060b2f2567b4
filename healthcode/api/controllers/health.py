"""Liveness and readiness probes (never shed, never rate-limited)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.datastructures import State

import healthcode
from healthcode.api.problems import COMMON_RESPONSES
from healthcode.api.wire import Health, Readiness
from healthcode.core.storage.database import Database


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get("/live", operation_id="liveness", responses=COMMON_RESPONSES)
    async def live(self) -> Health:
        """The process is up."""
        return Health(status="ok", version=healthcode.__version__)

    @get("/ready", operation_id="readiness", responses=COMMON_RESPONSES)
    async def ready(self, state: State) -> Readiness:
        """The database answers and its schema is current (503 otherwise)."""
        db: Database = state.db
        await db.check_schema()
        return Readiness(status="ready", backend=db.backend)
