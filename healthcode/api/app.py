"""The Litestar application factory.

``create_app()`` reads settings from the environment; tests pass their own.
The database opens on start-up (migrating it when allowed) and a background
task purges expired data after each 24:00 Asia/Shanghai (``purge_expired``,
the same purge as ``healthcode purge`` and ``POST /admin/purge``), logging
the day's rollover once in one line (``roll_over``). Each app counts its
metrics in its own registry (``healthcode.api.metrics``), served at ``/metrics``.
With ``Settings.redis_url`` each worker shares rate limits and once-only uses
with every node through Redis (``healthcode.core.shared``) and listens there
for token and pass revocations.
The app leaves logging alone: ``healthcode serve`` configures it (``healthcode.logs``).
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
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.exceptions import SerializationException
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
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
from healthcode.api.metrics import Metrics, metrics_endpoint
from healthcode.api.overload import ClientWindows, InFlight, LoadShedder, RateLimiter
from healthcode.api.problems import EXCEPTION_HANDLERS
from healthcode.api.services import Services
from healthcode.api.settings import Settings
from healthcode.api.web import WEB_HANDLERS, OfflineSwaggerRenderPlugin, schema_router
from healthcode.core.clock import next_cutoff, now_utc
from healthcode.core.enrollment import EnrollmentService, OperatorRateLimiter
from healthcode.core.enrollment.challenges import (
    DEMO_ACTIONS,
    liveness_actions,
    restrict_actions,
)
from healthcode.core.models import Issuer
from healthcode.core.passes import KeyStore, TrustStore
from healthcode.core.passes.service import PassService
from healthcode.core.passes.trust import default_trust_file
from healthcode.core.passes.verification import VerificationService
from healthcode.core.plugins import get_plugin_manager
from healthcode.core.replay import UsedPurger
from healthcode.core.shared import EVENT_PASS, EVENT_TOKENS, SharedState, attach
from healthcode.core.status.peer_tokens import configured_pair_keys
from healthcode.core.status.purge import roll_over
from healthcode.core.storage.database import Database, open_database

log = logging.getLogger("healthcode.api")

HEALTH_PREFIX = "/health"
METRICS_PATH = "/metrics"


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


ROLLOVER_POLL_SECONDS = 30.0
"""How often the rollover task looks at the wall clock (it follows the wall
clock, not a monotonic sleep of hours, so a clock that jumps or a machine that
slept still rolls over within this)."""


async def _rollover(db: Database, passes: PassService, *, at_start: bool = False) -> None:
    """This worker's rollover: the first worker of the day purges and logs the
    one summary line; every worker then runs the purge for its own cached
    revocations (a no-op in the database by then). At start, a day that began
    while the service was down is logged only when something was purged."""
    now = now_utc()
    rollover = await roll_over(db, now=now)
    if rollover is not None and (rollover.deleted_any or not at_start):
        log.info(
            "%s%s",
            rollover.line(),
            " (at start: the service was not running at 24:00)" if at_start else "",
            extra={"rollover": rollover.as_dict()},
        )
    await passes.purge(now=now)


async def _roll_over_daily(db: Database, passes: PassService) -> None:
    """After each 24:00 Asia/Shanghai (and a second), roll over; forever."""
    due = next_cutoff(now_utc()) + dt.timedelta(seconds=1)
    while True:
        left = (due - now_utc()).total_seconds()
        if left > 0:
            await asyncio.sleep(min(left, ROLLOVER_POLL_SECONDS))
            continue
        try:
            await _rollover(db, passes)
        except Exception:
            log.exception("daily rollover failed; will try after the next cut-off")
        due = next_cutoff(now_utc()) + dt.timedelta(seconds=1)


ROUTE_HANDLERS: list[ControllerRouterHandler] = [
    HealthController,
    DocumentController,
    EnrollmentController,
    HolderController,
    GuardController,
    AdminController,
    PublicController,
    metrics_endpoint,
    *WEB_HANDLERS,
]


def create_app(
    settings: Settings | None = None, *, plugin_manager: pluggy.PluginManager | None = None
) -> Litestar:
    """The application. ``plugin_manager``: defaults to the process-wide one
    (tests pass a manager with their integration stand-ins registered)."""
    settings = settings or Settings.from_env()
    metrics, in_flight = Metrics(), InFlight()
    app = Litestar(
        route_handlers=ROUTE_HANDLERS,
        lifespan=[_lifespan(settings, plugin_manager)],
        request_class=JSONSafeRequest,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=_middleware(settings, metrics, in_flight),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=_openapi_config(),
        on_app_init=[_note_settings(settings)],
        before_send=[_complete_allow_header],
        after_exception=[metrics.after_exception],
        state=State({"metrics": metrics, "in_flight": in_flight, "shared": None}),
        # Logging is the server's to configure (one format: healthcode.logs).
        logging_config=None,
        # Pages, scripts and JSON travel gzip-compressed to clients that ask.
        compression_config=CompressionConfig(backend="gzip", minimum_size=1024),
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
    shared = None
    if settings.redis_url:
        shared = SharedState(settings.redis_url)
        attach(db, shared)
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
            demo=settings.demo,
        ),
        keys=keys,
        passes=passes,
        trust=trust,
        verification=VerificationService(
            db, keys, trust, passes, plugin_issuers=_plugin_issuers(pm), used=used
        ),
        callers=OperatorRateLimiter(capacity=settings.caller_rate_per_minute, per_seconds=60.0),
        used=used,
        shared=shared,
        caller_rate_per_minute=settings.caller_rate_per_minute,
    )


def _on_event(services: Services) -> Callable[[str], None]:
    """What a worker does with an event published through Redis."""

    def handle(event: str) -> None:
        if event == EVENT_TOKENS:
            services.tokens.drop_all()
        elif event.startswith(EVENT_PASS):
            try:
                for pass_id in event[len(EVENT_PASS) :].split(","):
                    services.passes.revoked_elsewhere(bytes.fromhex(pass_id))
            except ValueError:
                log.warning("ignored a malformed revocation event")

    return handle


def _reconcile(services: Services) -> Callable[[], None]:
    """After missed messages: read tokens and revocations from the database."""

    def reconcile() -> None:
        services.tokens.drop_all()
        services.passes.reconcile()

    return reconcile


def _liveness_actions(settings: Settings, pm: pluggy.PluginManager) -> tuple[str, ...]:
    """The operator's restriction of the liveness actions, checked against the
    registered ones at start (a misspelt action stops the service, not an enrollment).
    A demo instance draws from ``DEMO_ACTIONS`` unless the operator chose."""
    allowed = settings.liveness_actions or (DEMO_ACTIONS if settings.demo else ())
    if not allowed:
        return ()
    registered = tuple(liveness_actions(pm))
    try:
        return restrict_actions(registered, allowed)
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
        app.state.shared = services.shared
        tasks = []
        if services.shared is not None:
            tasks.append(
                asyncio.create_task(
                    services.shared.listen(_on_event(services), on_reconnect=_reconcile(services)),
                    name="healthcode-shared-events",
                )
            )
        metrics: Metrics = app.state.metrics
        if metrics.multiprocess:
            tasks.append(asyncio.create_task(metrics.keep_sampled(app.state)))
        if settings.run_purge:
            # Catch up on a day that ended while the service was down.
            await _rollover(services.db, services.passes, at_start=True)
            tasks.append(
                asyncio.create_task(
                    _roll_over_daily(services.db, services.passes), name="healthcode-rollover"
                )
            )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if services.shared is not None:
                await services.shared.close()
            await services.db.dispose()
            metrics.close()

    return lifespan


def _middleware(
    settings: Settings, metrics: Metrics, in_flight: InFlight
) -> list[DefineMiddleware]:
    """Load shedding first (a rush gets 503), then the per-client rate limit (429);
    both count their refusals in ``metrics``."""
    return [
        DefineMiddleware(
            LoadShedder,
            limit=settings.max_in_flight,
            retry_after=settings.retry_after_seconds,
            # Probes and scrapes are never shed: an overload is when they matter.
            exempt=(HEALTH_PREFIX, METRICS_PATH),
            counter=in_flight,
            on_refusal=metrics.refused,
        ),
        DefineMiddleware(
            RateLimiter,
            per_minute=settings.rate_limit_per_minute,
            exempt=(HEALTH_PREFIX, "/schema"),
            windows=ClientWindows(),
            on_refusal=metrics.refused,
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
        openapi_router=schema_router("/schema"),
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
