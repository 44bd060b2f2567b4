"""The Litestar application factory.

``create_app()`` reads settings from the environment; tests pass their own.
The database opens on start-up (migrating it when allowed) and a background
task purges expired data after each 24:00 Asia/Shanghai (``purge_expired``,
the same purge as ``healthcode purge`` and ``POST /admin/purge``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pluggy
from litestar import Litestar, Request
from litestar.config.app import AppConfig
from litestar.exceptions import SerializationException
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, Schema, SecurityScheme
from litestar.types import ControllerRouterHandler, Message, Scope

import healthcode
from healthcode.api import wire
from healthcode.api.controllers.admin import AdminController, PublicController
from healthcode.api.controllers.documents import DocumentController
from healthcode.api.controllers.enrollments import EnrollmentController
from healthcode.api.controllers.guards import GuardController
from healthcode.api.controllers.health import HealthController
from healthcode.api.controllers.holders import HolderController
from healthcode.api.overload import ClientWindows, InFlight, LoadShedder, RateLimiter
from healthcode.api.problems import EXCEPTION_HANDLERS
from healthcode.api.services import Services
from healthcode.api.settings import Settings
from healthcode.api.web import WEB_HANDLERS
from healthcode.core.clock import next_cutoff, now_utc
from healthcode.core.enrollment import EnrollmentService, OperatorRateLimiter
from healthcode.core.enrollment.challenges import liveness_actions, restrict_actions
from healthcode.core.models import Issuer
from healthcode.core.passes import KeyStore, TrustStore
from healthcode.core.passes.service import PassService
from healthcode.core.passes.trust import default_trust_file
from healthcode.core.passes.verification import VerificationService
from healthcode.core.plugins import get_plugin_manager
from healthcode.core.replay import UsedPurger
from healthcode.core.status.peer_tokens import configured_pair_keys
from healthcode.core.storage.database import open_database

log = logging.getLogger("healthcode.api")

HEALTH_PREFIX = "/health"


class JSONSafeRequest(Request[Any, Any, Any]):
    """The request of every handler. msgspec decodes a JSON body nested deeper
    than Python's recursion limit (``[[[[...``) by raising ``RecursionError``;
    here that is the malformed body it is, answered like any other undecodable
    JSON body (400 ``bad_request``), for every JSON endpoint at once."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise SerializationException("The JSON body is nested too deeply.") from None


async def _purge_daily(passes: PassService) -> None:
    """Sleep until each next 24:00 Asia/Shanghai, then purge; forever."""
    while True:
        now = now_utc()
        # A second past midnight, so the day that ended is entirely over.
        wait = (next_cutoff(now) - now).total_seconds() + 1
        await asyncio.sleep(wait)
        try:
            deleted = await passes.purge()
            log.info("daily purge done: %s", deleted)
        except Exception:
            log.exception("daily purge failed; will try after the next cut-off")


ROUTE_HANDLERS: list[ControllerRouterHandler] = [
    HealthController,
    DocumentController,
    EnrollmentController,
    HolderController,
    GuardController,
    AdminController,
    PublicController,
    *WEB_HANDLERS,
]


def create_app(
    settings: Settings | None = None, *, plugin_manager: pluggy.PluginManager | None = None
) -> Litestar:
    """The application. ``plugin_manager``: defaults to the process-wide one
    (tests pass a manager with their integration stand-ins registered)."""
    settings = settings or Settings.from_env()
    app = Litestar(
        route_handlers=ROUTE_HANDLERS,
        lifespan=[_lifespan(settings, plugin_manager)],
        request_class=JSONSafeRequest,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=_middleware(settings),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=_openapi_config(),
        on_app_init=[_note_settings(settings)],
        before_send=[_complete_allow_header],
        debug=False,
    )
    _close_request_schemas(app)
    return app


async def build_services(settings: Settings, pm: pluggy.PluginManager) -> Services:
    """Open the database (migrating it when allowed) and build one worker's services."""
    db, secrets = await open_database(
        settings.database_url, settings.secrets_file, migrate=settings.migrate_on_start
    )
    keys = KeyStore(settings.keys_dir)
    trust = TrustStore(settings.trust_file or default_trust_file(), keys)
    passes = PassService(db, keys, pm=pm)
    used = UsedPurger(db)
    return Services(
        db=db,
        secrets=secrets,
        pm=pm,
        enrollment=EnrollmentService(
            db,
            secrets,
            pm,
            peer_keys=lambda: configured_pair_keys(keys),
            liveness_actions=_liveness_actions(settings, pm),
        ),
        keys=keys,
        passes=passes,
        trust=trust,
        verification=VerificationService(
            db, keys, trust, passes, plugin_issuers=_plugin_issuers(pm), used=used
        ),
        callers=OperatorRateLimiter(capacity=settings.caller_rate_per_minute, per_seconds=60.0),
        used=used,
    )


def _liveness_actions(settings: Settings, pm: pluggy.PluginManager) -> tuple[str, ...]:
    """The operator's restriction of the liveness actions, checked against the
    registered ones at start (a misspelt action stops the service, not an enrollment)."""
    if not settings.liveness_actions:
        return ()
    registered = tuple(liveness_actions(pm))
    try:
        return restrict_actions(registered, settings.liveness_actions)
    except ValueError as exc:
        raise ValueError(f"HEALTHCODE_LIVENESS_ACTIONS: {exc}") from None


def _lifespan(
    settings: Settings, plugin_manager: pluggy.PluginManager | None
) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = await build_services(settings, plugin_manager or get_plugin_manager())
        app.state.db = services.db
        app.state.secrets = services.secrets
        app.state.services = services
        purge_task = None
        if settings.run_purge:
            # Catch up on a day that ended while the service was down.
            await services.passes.purge()
            purge_task = asyncio.create_task(_purge_daily(services.passes), name="healthcode-purge")
        try:
            yield
        finally:
            if purge_task is not None:
                purge_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purge_task
            await services.db.dispose()

    return lifespan


def _middleware(settings: Settings) -> list[DefineMiddleware]:
    """Load shedding first (a rush gets 503), then the per-client rate limit (429)."""
    return [
        DefineMiddleware(
            LoadShedder,
            limit=settings.max_in_flight,
            retry_after=settings.retry_after_seconds,
            exempt=(HEALTH_PREFIX,),
            counter=InFlight(),
        ),
        DefineMiddleware(
            RateLimiter,
            per_minute=settings.rate_limit_per_minute,
            exempt=(HEALTH_PREFIX, "/schema"),
            windows=ClientWindows(),
        ),
    ]


HOLDER_SECURITY_SCHEME = SecurityScheme(
    type="apiKey",
    name="Authorization",
    security_scheme_in="header",
    description=(
        "Holders sign each request with the device key bound at enrollment (ECDSA P-256, "
        "SHA-256): `Authorization: HC-Device subject=<subject id, 64 hex>, ts=<unix ms>, "
        "sig=<base64url of the 64-byte r||s signature>` over the signed text "
        "`HC-DEVICE-1` LF `METHOD` LF `TARGET` LF `ts` LF `hex(sha256(body))`, where TARGET "
        "is the path as sent plus `?query` when there is a query string. Valid 60 s either "
        "side of the server's clock, and each signed request is accepted once."
    ),
)

BEARER_SECURITY_SCHEME = SecurityScheme(
    type="http",
    scheme="bearer",
    bearer_format="hc_<role>_<id>.<secret>",
    description=(
        "Guard and admin tokens from `healthcode tokens create --role guard|admin`: "
        "`Authorization: Bearer hc_<role>_<id>.<secret>`. Shown once, stored hashed, revocable."
    ),
)


class OfflineSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Swagger UI from the app's own vendored copy (``/static/vendor/swagger-ui``):
    ``/schema`` works offline. No favicon from a CDN, no online validator badge."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        page = super().render(request, openapi_schema)
        return page.replace(b"deepLinking: true,", b"validatorUrl: null,\n deepLinking: true,", 1)


def _openapi_config() -> OpenAPIConfig:
    vendor = "/static/vendor/swagger-ui"
    return OpenAPIConfig(
        title="healthcode",
        version=healthcode.__version__,
        description=(
            "Health-code service: identity documents (mainland ID, passports, "
            "HK/Macao/Taiwan permits), enrollment, daily status, signed passes. "
            "Errors are RFC 9457 problem details with a stable `code` and messages "
            "in Chinese and English. Holders authenticate with `HC-Device` request "
            "signatures; guards and admins with bearer tokens."
        ),
        path="/schema",
        components=Components(
            security_schemes={
                "HC-Device": HOLDER_SECURITY_SCHEME,
                "bearer": BEARER_SECURITY_SCHEME,
            }
        ),
        render_plugins=[
            OfflineSwaggerRenderPlugin(
                js_url=f"{vendor}/swagger-ui-bundle.js",
                css_url=f"{vendor}/swagger-ui.css",
                standalone_preset_js_url=f"{vendor}/swagger-ui-standalone-preset.js",
                favicon="",
            )
        ],
    )


async def _complete_allow_header(message: Message, scope: Scope) -> None:
    """Litestar's automatic OPTIONS answer lists only one handler's methods when
    several handlers share a path; list every method the path has."""
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
        return
    template = scope.get("path_template")
    methods = scope["litestar_app"].route_handler_method_map.get(template) if template else None
    if not methods:
        return
    allow = ", ".join(sorted(methods)).encode()
    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
    message["headers"] = [*headers, (b"allow", allow)]


def _plugin_issuers(pm: pluggy.PluginManager) -> list[Issuer]:
    """Peer issuers named by plugins (``healthcode_trusted_issuers``)."""
    return [issuer for batch in pm.hook.healthcode_trusted_issuers() for issuer in batch or ()]


def _close_request_schemas(app: Litestar) -> None:
    """Say in the OpenAPI document what the wire types enforce: request bodies
    that forbid unknown fields get ``additionalProperties: false``."""
    schemas = app.openapi_schema.components.schemas or {}
    for name, struct in inspect.getmembers(wire, inspect.isclass):
        config = getattr(struct, "__struct_config__", None)
        if config is not None and config.forbid_unknown_fields and name in schemas:
            schema = schemas[name]
            if isinstance(schema, Schema):
                schema.additional_properties = False


def _note_settings(settings: Settings):  # type: ignore[no-untyped-def]
    def hook(config: AppConfig) -> AppConfig:
        config.state["settings"] = settings
        config.state["started_at"] = dt.datetime.now(dt.UTC).isoformat()
        return config

    return hook
