"""The web front door, served by the API itself: the holder app at ``/``, the
guard page at ``/guard`` and the assisted check (老幼助查) at ``/guard/assist``
(plain HTML files in ``pages/``), and their CSS, ES modules and vendored
libraries under ``/static`` (``static/``). Nothing is fetched from elsewhere:
every page carries a self-only Content-Security-Policy, the API reference at
``/schema`` too (``OfflineSwaggerRenderPlugin`` and ``schema_router``, used
by ``healthcode.api.app``: the vendored Swagger UI started from a script file
instead of the usual inline one).

The pages are Chinese by default; ``<html lang>`` is set from the request's
``Accept-Language`` (English when English is preferred over Chinese) and the
page's own switch (``?lang=en``, remembered in localStorage) overrides it.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from litestar import MediaType, Request, Response, Router, get
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

WEB_DIR = Path(__file__).parent
PAGES_DIR = WEB_DIR / "pages"
STATIC_DIR = WEB_DIR / "static"
SWAGGER_UI = "/static/vendor/swagger-ui"
"""Where the vendored Swagger UI is served (``/schema``'s renderer)."""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""Self only: no CDN, no inline script, no fetch to another origin."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def prefers_english(accept_language: str) -> bool:
    """True when the header ranks English above Chinese (Chinese by default)."""
    best_zh = best_en = 0.0
    for part in accept_language.split(","):
        fields = part.strip().split(";")
        tag = fields[0].strip().lower()
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag.startswith("zh"):
            best_zh = max(best_zh, q)
        elif tag.startswith("en"):
            best_en = max(best_en, q)
    return best_en > best_zh


def _page(name: str, request: Request[Any, Any, Any]) -> Response[bytes]:
    html = (PAGES_DIR / name).read_text(encoding="utf-8")
    if prefers_english(request.headers.get("accept-language", "")):
        html = html.replace('<html lang="zh-CN"', '<html lang="en"', 1)
    return Response(
        html.encode("utf-8"),
        media_type=MediaType.HTML,
        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache", "Vary": "Accept-Language"},
    )


@get("/", include_in_schema=False, name="web:holder")
async def holder_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The holder app."""
    return _page("index.html", request)


@get("/guard", include_in_schema=False, name="web:guard")
async def guard_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The guard's scanner."""
    return _page("guard.html", request)


@get("/guard/assist", include_in_schema=False, name="web:assist")
async def assist_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    """老幼助查: the assisted check by document number."""
    return _page("assist.html", request)


@get("/sw.js", include_in_schema=False, name="web:service-worker")
async def service_worker() -> Response[bytes]:
    """The holder app's service worker, at the root so that its scope is ``/``."""
    path = STATIC_DIR / "sw.js"
    if not path.is_file():
        raise NotFoundException()
    return Response(
        path.read_bytes(),
        media_type="text/javascript; charset=utf-8",
        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


def _static_headers(response: Response[Any]) -> Response[Any]:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


static_router: Router = create_static_files_router(
    path="/static",
    directories=[STATIC_DIR],
    name="web:static",
    include_in_schema=False,
    cache_control=CacheControlHeader(no_cache=True),
    after_request=_static_headers,
)

# --- /schema: the API reference, offline and under the same policy ------------------------


class OfflineSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Swagger UI from the app's own vendored copy (``/static/vendor/swagger-ui``),
    so that ``/schema`` works offline, started by ``static/js/schema.js`` from
    the OpenAPI document's URL: no inline script or style, so the page keeps
    the self-only Content-Security-Policy (``schema_router`` sends it). No
    favicon from a CDN, no online validator badge."""

    def __init__(
        self,
        *,
        js_url: str = f"{SWAGGER_UI}/swagger-ui-bundle.js",
        css_url: str = f"{SWAGGER_UI}/swagger-ui.css",
        standalone_preset_js_url: str = f"{SWAGGER_UI}/swagger-ui-standalone-preset.js",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("favicon", "")
        super().__init__(
            js_url=js_url,
            css_url=css_url,
            standalone_preset_js_url=standalone_preset_js_url,
            **kwargs,
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = str(openapi_schema.get("info", {}).get("title", "API"))
        fields = {
            "title": title,
            "openapi_url": self.get_openapi_json_route(request),
            "css_url": self.css_url,
            "js_url": self.js_url,
            "standalone_preset_js_url": self.standalone_preset_js_url,
        }
        page = (PAGES_DIR / "schema.html").read_text(encoding="utf-8")
        for name, value in fields.items():
            page = page.replace("{" + name + "}", html.escape(value))
        return page.encode("utf-8")


def schema_router(path: str = "/schema") -> Router:
    """The router of the OpenAPI pages (``OpenAPIConfig(openapi_router=...)``):
    every answer under ``path`` carries the pages' security headers."""
    return Router(
        path,
        route_handlers=[],
        include_in_schema=False,
        response_headers=[
            ResponseHeader(name=name, value=value) for name, value in SECURITY_HEADERS.items()
        ],
    )


WEB_HANDLERS: list[ControllerRouterHandler] = [
    holder_page,
    guard_page,
    assist_page,
    service_worker,
    static_router,
]
"""Registered by ``healthcode.api.app.create_app``."""
