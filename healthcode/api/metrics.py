"""Prometheus metrics of one app, served at ``GET /metrics`` to admins.

Counted at the API edge: verifications by result and refusal code and their
latency (the guard controller), enrollments by purpose and result and
liveness failures by reason (the enrollment controllers), status imports
(rows and duration), refusals by rate limits and overload (the middleware and
the problems that say so), and the face and OCR work in flight, sampled from
the enrollment service when scraped.

Each app has its own registry, so that apps (tests, several in one process)
never share counts. Under ``healthcode serve --workers N`` every worker
counts into ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess
mode, set up by ``serve``) and a scrape of any worker sums them all.

Labels carry codes only (refusal codes, outcomes, reasons), never anything
about a person.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from typing import Any, Literal

from litestar import Request, Response, get
from litestar.datastructures import State
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from healthcode.api.problems import AUTH_RESPONSES, COMMON_RESPONSES
from healthcode.api.services import require_token
from healthcode.core.enrollment import EnrollmentService
from healthcode.core.enrollment.errors import (
    CaptureNotFromLivenessError,
    FaceWorkBusyError,
    LivenessFailedError,
    RateLimitedError,
)
from healthcode.core.errors import HealthcodeError
from healthcode.core.passes.models import Verdict
from healthcode.core.shared import ReplayCheckUnavailableError
from healthcode.core.status.importing import ImportSummary

SAMPLE_SECONDS = 1.0
"""How often each of several workers samples its gauges."""
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's variable: the directory every worker counts into."""

VerificationResult = Literal["admit", "not_green", "refused"]
EnrollmentPurpose = Literal["enroll", "renew", "dependant"]

# Offline signature checks take about a millisecond; a database look-up more.
VERIFICATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
IMPORT_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
REFUSAL_CODES = frozenset(
    {
        RateLimitedError.code,
        FaceWorkBusyError.code,
        ReplayCheckUnavailableError.code,
        "too_many_requests",
        "service_busy",
    }
)
"""Problems that say "try later": per client address (``too_many_requests``),
per guard token or holder (``rate_limited``), requests in flight (``service_busy``),
face and OCR work (``face_service_busy``), Redis unreachable for the once-only
check of codes and signed requests (``replay_check_unavailable``)."""


def multiprocess_dir() -> str | None:
    """The directory workers count into, when the server runs several."""
    return os.environ.get(MULTIPROC_ENV, "").strip() or None


class Metrics:
    """The metrics of one app (one worker)."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        # In multiprocess mode the values live in files; a scrape collects them.
        registry = None if self.multiprocess else CollectorRegistry()
        self.registry = registry
        self.verifications = Counter(
            "healthcode_verifications",
            "Guards' verifications by result (admit, not_green, refused) and code "
            "(accepted or the refusal code).",
            ["result", "code"],
            registry=registry,
        )
        self.verification_seconds = Histogram(
            "healthcode_verification_seconds",
            "Time to verify one presentation (signature, trust, revocation, replay).",
            buckets=VERIFICATION_BUCKETS,
            registry=registry,
        )
        self.enrollments = Counter(
            "healthcode_enrollments",
            "Enrollments by purpose (enroll, renew, dependant) and result (the outcome, "
            "e.g. created, or the refusal code).",
            ["purpose", "result"],
            registry=registry,
        )
        self.liveness_failures = Counter(
            "healthcode_liveness_failures",
            "Failed liveness checks by reason (the judge's reason codes, or "
            "capture_not_from_liveness).",
            ["reason"],
            registry=registry,
        )
        self.import_rows = Counter(
            "healthcode_status_import_rows",
            "Rows of authority status imports by outcome (imported, invalid).",
            ["outcome"],
            registry=registry,
        )
        self.import_seconds = Histogram(
            "healthcode_status_import_seconds",
            "Duration of one status import.",
            buckets=IMPORT_BUCKETS,
            registry=registry,
        )
        self.refusals = Counter(
            "healthcode_refusals",
            "Requests refused by a rate limit or for overload, by problem code.",
            ["code"],
            registry=registry,
        )
        self.face_work = self._gauge(
            "healthcode_face_work_in_flight",
            "Face and OCR jobs running or queued in the worker's thread pool.",
        )
        self.face_work_limit = self._gauge(
            "healthcode_face_work_limit", "Face and OCR jobs a worker takes at once."
        )
        self.image_requests = self._gauge(
            "healthcode_image_requests_in_flight", "Requests holding decoded images."
        )
        self.image_requests_limit = self._gauge(
            "healthcode_image_requests_limit", "Requests a worker lets hold decoded images."
        )
        self.requests_in_flight = self._gauge(
            "healthcode_requests_in_flight", "Requests being answered (beyond the limit: 503)."
        )

    def _gauge(self, name: str, documentation: str) -> Gauge:
        # Summed over live workers; a worker that stops takes its values along.
        return Gauge(name, documentation, multiprocess_mode="livesum", registry=self.registry)

    # --- what the API counts -----------------------------------------------------------

    def observe_verification(self, verdict: Verdict, seconds: float) -> None:
        result: VerificationResult = (
            "admit" if verdict.admit else "not_green" if verdict.ok else "refused"
        )
        self.verifications.labels(result, verdict.code).inc()
        self.verification_seconds.observe(seconds)

    @contextlib.contextmanager
    def enrollment(self, purpose: EnrollmentPurpose) -> Iterator[EnrollmentOutcome]:
        """Count one enrollment request: set ``outcome.result`` on success; a
        healthcode error counts as its code (and a liveness failure by reason)."""
        outcome = EnrollmentOutcome()
        try:
            yield outcome
        except HealthcodeError as error:
            self.enrollments.labels(purpose, error.code).inc()
            self._liveness_failure(error)
            raise
        self.enrollments.labels(purpose, outcome.result).inc()

    def _liveness_failure(self, error: HealthcodeError) -> None:
        if isinstance(error, LivenessFailedError):
            reasons = error.details.get("reasons") or ["unspecified"]
            for reason in reasons:
                self.liveness_failures.labels(str(reason)).inc()
        elif isinstance(error, CaptureNotFromLivenessError):
            self.liveness_failures.labels(error.code).inc()

    def observe_import(self, summary: ImportSummary) -> None:
        self.import_rows.labels("imported").inc(summary.rows_imported)
        self.import_rows.labels("invalid").inc(summary.rows_invalid)
        self.import_seconds.observe(summary.seconds)

    def refused(self, code: str) -> None:
        self.refusals.labels(code).inc()

    async def after_exception(self, error: BaseException, _scope: Any) -> None:
        """Litestar's ``after_exception`` hook: refusals raised by handlers."""
        if isinstance(error, HealthcodeError) and error.code in REFUSAL_CODES:
            self.refused(error.code)

    def sample(self, state: State, in_flight: int) -> None:
        """Set the gauges from this worker's state."""
        self.requests_in_flight.set(in_flight)
        found = getattr(state, "services", None)
        if found is None:
            return
        enrollment = found.enrollment
        face_jobs, image_requests = work_in_flight(enrollment)
        self.face_work.set(face_jobs)
        self.face_work_limit.set(enrollment.max_face_jobs)
        self.image_requests.set(image_requests)
        self.image_requests_limit.set(enrollment.max_image_requests)

    async def keep_sampled(self, state: State, *, every: float = SAMPLE_SECONDS) -> None:
        """Sample this worker's gauges every ``every`` seconds, forever: with
        several workers a scrape reaches one, and the others' gauges must be
        fresh too."""
        while True:
            self.sample(state, state.in_flight.count)
            await asyncio.sleep(every)

    def render(self) -> bytes:
        """The text exposition of every metric (every worker's, in multiprocess mode)."""
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def close(self) -> None:
        """At the worker's end: its live gauges stop counting."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class EnrollmentOutcome:
    """What one enrollment request came to (``Metrics.enrollment``)."""

    def __init__(self) -> None:
        self.result = "unknown"


def work_in_flight(enrollment: EnrollmentService) -> tuple[int, int]:
    """Face and OCR jobs, and requests holding decoded images, in flight in
    ``enrollment``."""
    return enrollment.face_jobs_in_flight, enrollment.image_requests_in_flight


def metrics_of(state: State) -> Metrics:
    found: Metrics = state.metrics
    return found


@get(
    "/metrics",
    operation_id="metrics",
    tags=["operations"],
    security=[{"bearer": []}],
    responses={**COMMON_RESPONSES, **AUTH_RESPONSES},
    media_type=CONTENT_TYPE_LATEST,
)
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus metrics (text exposition format), for admins: every worker's
    counts when the server runs several (see deploy/README.md)."""
    await require_token(request, "admin")
    state = request.app.state
    metrics = metrics_of(state)
    metrics.sample(state, state.in_flight.count)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
