"""Records the shared fixtures in ``conftest.py`` hand to tests: a database
backend and a live server."""

from __future__ import annotations

from pathlib import Path

from attrs import frozen


@frozen
class Backend:
    """One database for one test: SQLite in a temporary file, or a fresh
    (truncated) PostgreSQL database at 127.0.0.1:5432, initialised."""

    name: str
    url: str
    secrets_file: Path


@frozen
class LiveServer:
    """The real service under uvicorn in another process (``live_server``)."""

    url: str
    home: Path
    database_url: str
    clock_offset: float
    """Seconds its tests add to the machine's clock (the server is started at
    the shifted time, see ``clocked_uvicorn.py``)."""
