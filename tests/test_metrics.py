"""Prometheus metrics at ``/metrics`` (issue 16, the operator's day): admins
only; verifications by result and refusal code with their latency;
enrollments and liveness failures by reason; status imports; rate-limit and
overload refusals; the face and OCR work in flight; one registry per app;
several workers summed through prometheus-client's multiprocess mode.

The API runs through litestar's AsyncTestClient, after real requests. Faces
come from a throwaway plugin (enrollment's wiring is counted, not faces).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import json
import os
import random
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pluggy
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient, TestClient
from PIL import Image as PILImage
from prometheus_client.parser import text_string_to_metric_families
from support.faces import AcceptingFaces

import healthcode.plugins.authority_status as authority_status
import healthcode.plugins.id_card as id_card
import healthcode.plugins.passport as passport
from healthcode.api.app import create_app
from healthcode.api.metrics import MULTIPROC_ENV, Metrics
from healthcode.api.settings import Settings
from healthcode.cli import serve
from healthcode.core import hookspecs
from healthcode.core.auth import create_token, sign_request
from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import (
    Image,
    LivenessAction,
    LivenessChallenge,
    LivenessResult,
)
from healthcode.core.passes import HolderDevice, KeyStore
from healthcode.core.privacy import document_key, subject_id_hex
from healthcode.core.status import import_status_rows
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, init_instance
from healthcode.testing.resident_id import random_resident_id


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class StandInFaces(AcceptingFaces):
    """Faces that match; liveness passes unless ``refuse`` names reasons, and
    waits for ``gate`` when one is set (to hold face work in flight)."""

    def __init__(self) -> None:
        self.refuse: tuple[str, ...] = ()
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    @hookimpl
    def healthcode_liveness_actions(self) -> Sequence[LivenessAction]:
        return [
            LivenessAction("turn_left", "Turn left", "向左转头"),
            LivenessAction("turn_right", "Turn right", "向右转头"),
        ]

    @hookimpl
    def healthcode_check_liveness(
        self, challenge: LivenessChallenge, frames: Sequence[Image]
    ) -> LivenessResult:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(timeout=10)
        if self.refuse:
            return LivenessResult(passed=False, score=0.1, reasons=self.refuse)
        return LivenessResult(passed=True, score=1.0)


@pytest.fixture
def faces() -> StandInFaces:
    return StandInFaces()


@pytest.fixture
def plugins(faces: StandInFaces) -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(id_card, name="id_card")
    manager.register(passport, name="passport")
    manager.register(authority_status, name="authority_status")
    manager.register(faces, name="stand_in_faces")
    manager.check_pending()
    return manager


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'hc.db'}"
    asyncio.run(init_instance(url, tmp_path / "secrets.json"))
    KeyStore(tmp_path / "keys").init("110000", "北京市")
    return Settings(
        database_url=url,
        secrets_file=tmp_path / "secrets.json",
        keys_dir=tmp_path / "keys",
        trust_file=tmp_path / "trust.hct",
        run_purge=False,
    )


@pytest.fixture
async def client(
    settings: Settings, plugins: pluggy.PluginManager
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(create_app(settings, plugin_manager=plugins)) as c:
        yield c


def _svc(client: AsyncTestClient[Litestar]) -> Any:
    return client.app.state.services


async def _bearer(client: AsyncTestClient[Litestar], role: str) -> dict[str, str]:
    token = await create_token(_svc(client).db, role, f"{role} of the metrics test")
    return {"authorization": f"Bearer {token}"}


async def _scrape(client: AsyncTestClient[Litestar], admin: dict[str, str]) -> dict[str, float]:
    """Every sample of ``/metrics`` as ``name{label="value",...}`` -> value."""
    response = await client.get("/metrics", headers=admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


def _samples(text: str) -> dict[str, float]:
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


# --- who may read them ---------------------------------------------------------------


@pytest.mark.anyio
async def test_metrics_are_for_admins_only(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/metrics")).json()["code"] == "unauthorized"
    guard = await _bearer(client, "guard")
    forbidden = await client.get("/metrics", headers=guard)
    assert (forbidden.status_code, forbidden.json()["code"]) == (403, "forbidden")
    samples = await _scrape(client, await _bearer(client, "admin"))
    assert samples["healthcode_verification_seconds_count{}"] == 0
    assert samples["healthcode_requests_in_flight{}"] == 0  # scrapes are not counted (never shed)


# --- verifications ---------------------------------------------------------------------


async def _holder(client: AsyncTestClient[Litestar], device: HolderDevice, number: str) -> str:
    """A subject bound to ``device``, written straight into the database."""
    svc = _svc(client)
    key = document_key(svc.secrets, "passport", "GBR", number)
    now = dt.datetime.now(dt.UTC)
    async with svc.db.begin() as conn:
        await conn.execute(
            tables.subjects.insert().values(
                subject_key=key,
                kind="passport",
                masked_name="QUARTERMAINE",
                masked_number=f"{number[:2]}****{number[-2:]}",
                device_public_key=device.public_key_der,
                created_at=now,
                updated_at=now,
            )
        )
    return subject_id_hex(key)


async def _live_code(client: AsyncTestClient[Litestar], device: HolderDevice, subject: str) -> str:
    signed = sign_request(device.private_key, subject, "POST", "/me/passes")
    issued = await client.post("/me/passes", headers={"authorization": signed})
    assert issued.status_code == 201, issued.text
    return device.present(issued.json()["text"])


@pytest.mark.anyio
async def test_verifications_by_result_and_code_with_their_latency(
    client: AsyncTestClient[Litestar], today: dt.date
) -> None:
    guard, admin = await _bearer(client, "guard"), await _bearer(client, "admin")
    green, red = HolderDevice.generate("ES256"), HolderDevice.generate("ES256")
    green_code = await _live_code(client, green, await _holder(client, green, "Q7654321"))
    svc = _svc(client)
    await import_status_rows(
        svc.db,
        svc.secrets,
        ["kind,number,issuing_state,status", "passport,R1234567,GBR,red"],
        day=today,
        fmt="csv",
        pm=svc.pm,
    )
    red_code = await _live_code(client, red, await _holder(client, red, "R1234567"))

    for code in (green_code, green_code, red_code, "HCP1:not-a-pass"):
        response = await client.post(
            "/guard/verifications", json={"presentation": code}, headers=guard
        )
        assert response.status_code == 200
    samples = await _scrape(client, admin)

    verified = {k: v for k, v in samples.items() if k.startswith("healthcode_verifications_total")}
    assert verified['healthcode_verifications_total{code="accepted",result="admit"}'] == 1
    assert verified['healthcode_verifications_total{code="accepted",result="not_green"}'] == 1
    assert (
        verified['healthcode_verifications_total{code="presentation_replayed",result="refused"}']
        == 1
    )
    refused = [k for k in verified if 'result="refused"' in k]
    assert sum(verified[k] for k in refused) == 2
    assert samples["healthcode_verification_seconds_count{}"] == 4
    assert 0 < samples["healthcode_verification_seconds_sum{}"] < 4
    # Codes and results only: nothing about a person.
    text = (await client.get("/metrics", headers=admin)).text
    assert "Q7654321" not in text and "QUARTERMAINE" not in text


# --- enrollments -----------------------------------------------------------------------


def _png() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (64, 64), (128, 128, 128)).save(out, format="PNG")
    return out.getvalue()


def _enrollment_form(nonce: str) -> tuple[dict[str, str], list[Any]]:
    device = HolderDevice.generate("ES256")
    frame = _png()
    files = [("frames", (f"f{i}.png", frame, "image/png")) for i in range(3)]
    files.append(("capture", ("c.png", frame, "image/png")))
    data = {
        "challenge_nonce": nonce,
        "declared_name": "张三",
        "device_public_key": base64.b64encode(device.public_key_der).decode(),
        "number": random_resident_id(random.Random(nonce)),
    }
    return data, files


async def _enroll(client: AsyncTestClient[Litestar], nonce: str | None = None) -> Any:
    if nonce is None:
        issued = await client.post("/enrollments/challenges", json={"purpose": "enroll"})
        assert issued.status_code == 201, issued.text
        nonce = issued.json()["nonce"]
    data, files = _enrollment_form(nonce)
    return await client.post("/enrollments", data=data, files=files)


@pytest.mark.anyio
async def test_enrollments_by_result_and_liveness_failures_by_reason(
    client: AsyncTestClient[Litestar], faces: StandInFaces
) -> None:
    created = await _enroll(client)
    assert (created.status_code, created.json()["outcome"]) == (201, "created"), created.text
    faces.refuse = ("head_not_turned", "face_left_frame")
    assert (await _enroll(client)).json()["code"] == "liveness_failed"
    faces.refuse = ("head_not_turned",)
    assert (await _enroll(client)).json()["code"] == "liveness_failed"
    assert (await _enroll(client, nonce="made-up")).json()["code"] == "challenge_unknown"

    samples = await _scrape(client, await _bearer(client, "admin"))
    assert samples['healthcode_enrollments_total{purpose="enroll",result="created"}'] == 1
    assert samples['healthcode_enrollments_total{purpose="enroll",result="liveness_failed"}'] == 2
    assert samples['healthcode_enrollments_total{purpose="enroll",result="challenge_unknown"}'] == 1
    assert samples['healthcode_liveness_failures_total{reason="head_not_turned"}'] == 2
    assert samples['healthcode_liveness_failures_total{reason="face_left_frame"}'] == 1


def test_face_work_in_flight_is_seen_while_it_runs(
    settings: Settings, plugins: pluggy.PluginManager, faces: StandInFaces
) -> None:
    # The sync client serves the app on its own thread, so that a scrape is
    # answered while an enrollment waits in the face-work pool.
    with TestClient(create_app(settings, plugin_manager=plugins)) as client:
        token = client.blocking_portal.call(create_token, _svc(client).db, "admin", "ops")
        admin = {"authorization": f"Bearer {token}"}

        def scrape() -> dict[str, float]:
            response = client.get("/metrics", headers=admin)
            assert response.status_code == 200, response.text
            return _samples(response.text)

        idle = scrape()
        enrollment = _svc(client).enrollment
        assert idle["healthcode_face_work_in_flight{}"] == 0
        assert idle["healthcode_face_work_limit{}"] == enrollment.max_face_jobs
        assert idle["healthcode_image_requests_limit{}"] == enrollment.max_image_requests

        faces.gate = threading.Event()
        nonce = client.post("/enrollments/challenges", json={"purpose": "enroll"}).json()["nonce"]
        data, files = _enrollment_form(nonce)
        answers: list[Any] = []
        pending = threading.Thread(
            target=lambda: answers.append(client.post("/enrollments", data=data, files=files))
        )
        pending.start()
        try:
            assert faces.entered.wait(10)
            busy = scrape()
        finally:
            faces.gate.set()
            pending.join(20)
        assert busy["healthcode_face_work_in_flight{}"] == 1
        assert busy["healthcode_image_requests_in_flight{}"] == 1
        assert answers[0].status_code == 201, answers[0].text
        assert scrape()["healthcode_face_work_in_flight{}"] == 0


# --- imports ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_status_imports_count_rows_and_duration(settings: Settings, today: dt.date) -> None:
    db = Database(settings.database_url)
    try:
        from healthcode.core.privacy import load_secrets

        summary = await import_status_rows(
            db,
            load_secrets(settings.secrets_file),
            ["kind,number,status", "cn_resident_id,11010519491231002X,red", "cn_resident_id,1,red"],
            day=today,
            fmt="csv",
        )
    finally:
        await db.dispose()
    metrics = Metrics()
    metrics.observe_import(summary)
    samples = _samples(metrics.render().decode())
    assert samples['healthcode_status_import_rows_total{outcome="imported"}'] == 1
    assert samples['healthcode_status_import_rows_total{outcome="invalid"}'] == 1
    assert samples["healthcode_status_import_seconds_count{}"] == 1


# --- refusals --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_rate_limit_and_overload_refusals_are_counted(
    settings: Settings, plugins: pluggy.PluginManager
) -> None:
    limited = attrs.evolve(settings, rate_limit_per_minute=3, caller_rate_per_minute=1)
    async with AsyncTestClient(create_app(limited, plugin_manager=plugins)) as client:
        guard = await _bearer(client, "guard")
        presentation = {"presentation": "HCP1:x"}
        first = await client.post("/guard/verifications", json=presentation, headers=guard)
        again = await client.post("/guard/verifications", json=presentation, headers=guard)
        assert (first.status_code, again.json()["code"]) == (200, "rate_limited")
        assert (await client.get("/documents/kinds")).status_code == 200
        assert (await client.get("/documents/kinds")).json()["code"] == "too_many_requests"
        # This address's window is spent: read the app's registry itself.
        text = client.app.state.metrics.render().decode()
    assert 'healthcode_refusals_total{code="rate_limited"} 1.0' in text
    assert 'healthcode_refusals_total{code="too_many_requests"} 1.0' in text

    shed = attrs.evolve(settings, max_in_flight=0)
    async with AsyncTestClient(create_app(shed, plugin_manager=plugins)) as client:
        busy = await client.get("/documents/kinds")
        assert (busy.status_code, busy.json()["code"]) == (503, "service_busy")
        # Scrapes are never shed: an overload is when they matter most.
        samples = await _scrape(client, await _bearer(client, "admin"))
    assert samples['healthcode_refusals_total{code="service_busy"}'] == 1


@pytest.mark.anyio
async def test_each_app_counts_on_its_own(
    settings: Settings, plugins: pluggy.PluginManager
) -> None:
    async with AsyncTestClient(create_app(settings, plugin_manager=plugins)) as first:
        assert (await _enroll(first, nonce="made-up")).status_code == 409
        counted = await _scrape(first, await _bearer(first, "admin"))
    async with AsyncTestClient(create_app(settings, plugin_manager=plugins)) as second:
        fresh = await _scrape(second, await _bearer(second, "admin"))
    key = 'healthcode_enrollments_total{purpose="enroll",result="challenge_unknown"}'
    assert counted[key] == 1
    assert key not in fresh


# --- several workers -------------------------------------------------------------------

_WORKER = """
import asyncio
from litestar.datastructures import State
from healthcode.api.metrics import Metrics
from healthcode.api.overload import InFlight

metrics = Metrics()
assert metrics.multiprocess
metrics.refused("service_busy")
metrics.face_work.set(2)
state = State({"in_flight": InFlight()})
state.in_flight.count = 3


async def sampled_for_a_moment():
    sampler = asyncio.create_task(metrics.keep_sampled(state, every=0.01))
    await asyncio.sleep(0.05)
    sampler.cancel()


asyncio.run(sampled_for_a_moment())
"""


def test_several_workers_are_summed_through_the_multiprocess_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = os.environ | {MULTIPROC_ENV: str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", _WORKER], env=env, check=True, timeout=60)
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    text = Metrics().render().decode()
    assert 'healthcode_refusals_total{code="service_busy"} 2.0' in text
    assert "healthcode_face_work_in_flight 4.0" in text
    assert "healthcode_requests_in_flight 6.0" in text  # each worker samples its own


def test_serve_gives_several_workers_a_fresh_metrics_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # serve sets the variable for its workers; the test puts it back as it was.
    monkeypatch.setenv(MULTIPROC_ENV, "")
    monkeypatch.delenv(MULTIPROC_ENV)
    assert serve._metrics_directory(1) is None
    assert MULTIPROC_ENV not in os.environ
    created = serve._metrics_directory(4)
    assert created is not None and created.is_dir()
    assert os.environ[MULTIPROC_ENV] == str(created)
    created.rmdir()

    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"from the last run")
    monkeypatch.setenv(MULTIPROC_ENV, str(given))
    assert serve._metrics_directory(4) is None  # the operator's: kept, emptied
    assert list(given.iterdir()) == []


# --- the documented queries ------------------------------------------------------------


def test_the_deploy_queries_and_dashboard_name_only_metrics_that_exist() -> None:
    deploy = Path(__file__).parents[1] / "deploy"
    metrics = Metrics()
    # Every labelled metric once, so that its samples show.
    metrics.verifications.labels("admit", "accepted").inc()
    metrics.enrollments.labels("enroll", "created").inc()
    metrics.liveness_failures.labels("blink_not_seen").inc()
    metrics.import_rows.labels("imported").inc()
    metrics.refused("service_busy")
    samples = {name.split("{")[0] for name in _samples(metrics.render().decode())}
    known = samples | {n.removesuffix("_bucket") for n in samples if n.endswith("_bucket")}
    for document in ("README.md", "grafana-dashboard.json"):
        named = set(re.findall(r"\bhealthcode_[a-z_]*[a-z]", (deploy / document).read_text()))
        assert len(named) >= 8, document
        assert named <= known, (document, named - known)
    dashboard = json.loads((deploy / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert all(panel["targets"] for panel in dashboard["panels"])
