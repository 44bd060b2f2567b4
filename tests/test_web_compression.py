"""The pages travel compressed: with ``Accept-Encoding: gzip`` the app itself
(litestar's CompressionConfig, from 1024 bytes) sends every page, script and
stylesheet gzip-compressed, and the budget of issue 12 holds for a first load
of ``/`` and of ``/guard``: at most 300 KB compressed in all, scripts at most
150 KB. The files a page loads are found as the browser finds them: the
page's ``src``/``href``, then each ES module's imports, recursively (the
browser-measured figures: ``bench/bench_web.py``). No lifespan: the pages need
no database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from healthcode.api.app import create_app
from healthcode.api.settings import Settings
from healthcode.api.web import STATIC_DIR

BUDGET_BYTES = 300_000
SCRIPT_BUDGET_BYTES = 150_000
MINIMUM_SIZE = 1024
"""Smaller answers are sent as they are (gzip would gain little)."""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'hc.db'}",
        secrets_file=tmp_path / "secrets.json",
        keys_dir=tmp_path / "keys",
        trust_file=tmp_path / "trust.hct",
    )
    yield TestClient(create_app(settings))


def _static_files() -> list[str]:
    return sorted(
        "/static/" + path.relative_to(STATIC_DIR).as_posix()
        for path in STATIC_DIR.rglob("*")
        if path.suffix in (".js", ".mjs", ".css")
        and path.stat().st_size >= MINIMUM_SIZE
        # Swagger UI's: not on the holder's or the guard's first load.
        and "swagger-ui" not in path.parts
    )


@pytest.mark.parametrize("path", ["/", "/guard", "/guard/assist", "/sw.js", *_static_files()])
def test_pages_scripts_and_styles_are_sent_gzipped(client: TestClient[Litestar], path: str) -> None:
    plain = client.get(path, headers={"Accept-Encoding": "identity"})
    packed = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert plain.status_code == packed.status_code == 200
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in packed.headers["vary"].lower()
    # Same body once decoded (httpx decodes), far fewer bytes on the wire.
    assert packed.content == plain.content
    sent = int(packed.headers["content-length"])
    assert sent < len(plain.content) * 0.8, (sent, len(plain.content))
    if path.startswith("/static/"):
        assert plain.content == (STATIC_DIR / path.removeprefix("/static/")).read_bytes()


def test_a_small_file_is_sent_as_it_is(client: TestClient[Litestar]) -> None:
    small = min(
        (p for p in STATIC_DIR.rglob("*.js") if p.stat().st_size < MINIMUM_SIZE),
        key=lambda p: p.stat().st_size,
    )
    path = "/static/" + small.relative_to(STATIC_DIR).as_posix()
    response = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert "content-encoding" not in response.headers


_REFS = re.compile(r'<(?:script|link)\b[^>]*?\b(?:src|href)="(/[^"]+)"')
_IMPORTS = re.compile(
    r"""(?:^|;|\s)(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]"""
)


def _first_load(client: TestClient[Litestar], page: str) -> dict[str, tuple[int, bool]]:
    """Every file a first visit to ``page`` loads: path -> (bytes sent, script?)."""
    sent: dict[str, tuple[int, bool]] = {}
    todo = [page]
    while todo:
        path = todo.pop()
        if path in sent:
            continue
        response = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200, path
        compressed = response.headers.get("content-encoding") == "gzip"
        size = int(response.headers["content-length"]) if compressed else len(response.content)
        script = path.endswith((".js", ".mjs"))
        sent[path] = (size, script)
        if path == page:
            todo += _REFS.findall(response.text)
        elif script:
            base = path.rsplit("/", 1)[0] + "/"
            for found in _IMPORTS.findall(response.text):
                target = found[0] or found[1]
                if target.startswith("/"):
                    todo.append(target)
                elif target.startswith("."):
                    todo.append(_resolve(base, target))
    return sent


def _resolve(base: str, relative: str) -> str:
    parts = base.rstrip("/").split("/")
    for piece in relative.split("/"):
        if piece == "..":
            parts.pop()
        elif piece != ".":
            parts.append(piece)
    return "/".join(parts)


def test_first_loads_of_the_holder_and_guard_pages_fit_the_budget(
    client: TestClient[Litestar],
) -> None:
    holder = _first_load(client, "/")
    guard = _first_load(client, "/guard")
    # The module graph was followed: the holder app's modules and the QR library.
    assert "/static/js/holder/livecode.js" in holder
    assert "/static/vendor/qrcode-generator.mjs" in holder
    assert "/static/vendor/jsQR.js" in guard
    # Two first visits: a file both pages load (common.js, app.css) counts twice.
    files = holder | guard
    both = list(holder.values()) + list(guard.values())
    total = sum(size for size, _ in both)
    scripts = sum(size for size, script in both if script)
    assert total <= BUDGET_BYTES, (total, sorted(files.items(), key=lambda kv: -kv[1][0]))
    assert scripts <= SCRIPT_BUDGET_BYTES, scripts
