"""The web front door through litestar's TestClient (no browser): the pages
and their static files are served by the API itself, as HTML/JavaScript/CSS
with a self-only Content-Security-Policy; ``/`` is the holder app, not a JSON
404. The pages need no database, so the app is not started (no lifespan)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from healthcode.api.app import create_app
from healthcode.api.settings import Settings
from healthcode.api.web import CONTENT_SECURITY_POLICY, PAGES_DIR, STATIC_DIR, prefers_english


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'hc.db'}",
        secrets_file=tmp_path / "secrets.json",
        keys_dir=tmp_path / "keys",
        trust_file=tmp_path / "trust.hct",
    )
    # Not entered as a context manager: no lifespan, no database.
    yield TestClient(create_app(settings))


def _csp(response: Any) -> dict[str, str]:
    directives: dict[str, str] = {}
    for part in response.headers["content-security-policy"].split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            directives[name] = value
    return directives


@pytest.mark.parametrize(
    ("path", "lang"),
    [("/", "zh-CN"), ("/guard", "zh-CN"), ("/guard/assist", "zh-CN"), ("/schema", "en")],
)
def test_pages_are_html_with_a_self_only_csp(
    client: TestClient[Litestar], path: str, lang: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-content-type-options"] == "nosniff"
    csp = _csp(response)
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"
    assert csp["object-src"] == "'none'"
    assert response.text.lstrip().lower().startswith("<!doctype html>")
    assert f'<html lang="{lang}"' in response.text


def test_root_is_no_longer_a_json_404(client: TestClient[Litestar]) -> None:
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert "json" not in response.headers["content-type"]


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/static/js/common.js", "text/javascript"),
        ("/static/js/i18n.js", "text/javascript"),
        ("/static/js/guard.js", "text/javascript"),
        ("/static/js/assist.js", "text/javascript"),
        ("/static/vendor/jsQR.js", "text/javascript"),
        ("/static/css/app.css", "text/css"),
    ],
)
def test_static_files_have_their_types_and_the_csp(
    client: TestClient[Litestar], path: str, media_type: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    # Some platforms say application/javascript; both run as module scripts.
    assert response.headers["content-type"].split(";")[0] in (
        media_type,
        "application/javascript" if media_type == "text/javascript" else media_type,
    )
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"


def test_missing_static_file_is_a_404(client: TestClient[Litestar]) -> None:
    assert client.get("/static/js/nope.js").status_code == 404
    assert client.get("/static/../__init__.py").status_code == 404


def test_pages_refer_only_to_local_files() -> None:
    """No CDN: every src/href in the pages is a local path."""
    for page in PAGES_DIR.glob("*.html"):
        for ref in re.findall(r'(?:src|href)="([^"]+)"', page.read_text(encoding="utf-8")):
            if re.fullmatch(r"\{\w+\}", ref):
                continue  # filled in when served (schema.html: the test below checks it)
            local = ref.startswith(("/", "#", "data:")) and not ref.startswith("//")
            assert local, (page.name, ref)


def test_vendored_files_match_their_recorded_sha256() -> None:
    import hashlib

    notes = (STATIC_DIR / "vendor" / "VENDOR.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", notes, flags=re.MULTILINE)
    assert rows, "VENDOR.md lists no files"
    for name, digest in rows:
        data = (STATIC_DIR / "vendor" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name


def test_english_is_chosen_only_when_preferred_over_chinese(client: TestClient[Litestar]) -> None:
    assert prefers_english("en-GB,en;q=0.9")
    assert prefers_english("en-US,en;q=0.9,zh-CN;q=0.8")
    assert not prefers_english("zh-CN,zh;q=0.9,en;q=0.8")
    assert not prefers_english("")
    assert not prefers_english("fr-FR")
    response = client.get("/guard", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en"' in response.text
    assert "accept-language" in response.headers["vary"].lower()


def test_schema_page_loads_its_renderer_from_this_service(client: TestClient[Litestar]) -> None:
    """``/schema`` works offline: every script and stylesheet is ours."""
    page = client.get("/schema")
    assert page.status_code == 200
    refs = [r for r in re.findall(r'(?:src|href)="([^"]+)"', page.text) if r != "data:,"]
    assert refs and all(ref.startswith("/static/") for ref in refs), refs
    assert any(ref.startswith("/static/vendor/swagger-ui/") for ref in refs), refs
    assert "http://" not in page.text.split("<body>")[0]
    assert "https://" not in page.text.split("<body>")[0]
    for ref in refs:
        assert client.get(ref).status_code == 200, ref


def _schema_app() -> Litestar:
    """A bare app with the web module's /schema (what ``create_app`` uses)."""
    from litestar import get
    from litestar.openapi.config import OpenAPIConfig

    from healthcode.api.web import WEB_HANDLERS, OfflineSwaggerRenderPlugin, schema_router

    @get("/ping", sync_to_thread=False)
    def ping() -> str:
        return "pong"

    config = OpenAPIConfig(
        title="a <title>",
        version="1",
        path="/schema",
        openapi_router=schema_router("/schema"),
        render_plugins=[OfflineSwaggerRenderPlugin()],
    )
    return Litestar([ping, *WEB_HANDLERS], openapi_config=config)


def test_the_schema_page_has_no_inline_script_and_the_self_only_csp() -> None:
    with TestClient(_schema_app()) as bare:
        page = bare.get("/schema")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert page.headers["x-content-type-options"] == "nosniff"
        # No inline script or style for the policy to refuse: files only.
        assert re.findall(r"<script(?![^>]*\bsrc=)", page.text) == []
        assert "<style" not in page.text and "style=" not in page.text
        assert "<title>a &lt;title&gt;</title>" in page.text
        assert 'data-openapi="/schema/openapi.json"' in page.text
        assert bare.get("/schema/openapi.json").json()["paths"]["/ping"]
        for ref in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
            assert bare.get(ref).status_code == 200, ref


def test_openapi_declares_its_security_schemes(client: TestClient[Litestar]) -> None:
    document = client.get("/schema/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["HC-Device"] == {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": schemes["HC-Device"]["description"],
    }
    assert "HC-DEVICE-1" in schemes["HC-Device"]["description"]
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"] == "bearer"
    paths = document["paths"]
    assert paths["/me/status"]["get"]["security"] == [{"HC-Device": []}]
    assert paths["/guard/verifications"]["post"]["security"] == [{"bearer": []}]
    assert paths["/admin/purge"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in paths["/documents/kinds"]["get"]
    # The pages are not API operations.
    assert "/" not in paths and "/guard" not in paths


def test_the_service_worker_is_served_from_the_root(client: TestClient[Litestar]) -> None:
    """At /sw.js, so that its scope is the whole holder app."""
    if not (STATIC_DIR / "sw.js").is_file():
        pytest.skip("no service worker yet")
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["service-worker-allowed"] == "/"
    assert response.headers["cache-control"] == "no-cache"


def test_every_web_file_is_package_data() -> None:
    """pyproject's package-data patterns cover every page and static file."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["healthcode.api.web"]
    web = PAGES_DIR.parent
    covered = {path for pattern in patterns for path in web.glob(pattern) if path.is_file()}
    files = {
        p
        for p in web.rglob("*")
        if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts
    }
    assert files - covered == set()
