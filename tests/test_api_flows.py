"""The whole service through its HTTP API (AsyncTestClient), with the real
face plugin and real photos: a passport holder enrolls, gets today's status
and a pass; a guard verifies the live presentation; an authority list turns
the holder red and the pass is revoked at once; dependants and the assisted
check; roles and device signatures are enforced.

Liveness from photos, as in tests/test_enrollment.py: obama_1 -> obama_2 ->
obama_1 answers (turn_right, open_mouth); the challenge's actions are fixed
through the service so that photos can answer it.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pluggy
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.data import FACES
from support.faces import AuthorityPhotos, require_face_models
from support.holders import signed_multipart
from support.instances import sqlite_instance

import healthcode.plugins.authority_status as authority_status
from healthcode.api.app import create_app
from healthcode.api.settings import Settings
from healthcode.core.auth import create_token, sign_request
from healthcode.core.passes import HolderDevice, KeyStore
from healthcode.core.plugins import new_plugin_manager
from healthcode.core.storage.database import init_instance
from healthcode.testing.mrz import MRZFields, format_mrz

NUMBER = "Q1234567"
DECLARED_NAME = "QUARTERMAINE ALLAN JAMES"
MRZ = format_mrz(
    MRZFields(
        layout="TD3",
        document_code="P",
        issuing_state="GBR",
        nationality="GBR",
        surname="QUARTERMAINE",
        given_names="ALLAN JAMES",
        number=NUMBER,
        birth_date=dt.date(1971, 3, 14),
        sex="M",
        expiry_date=dt.date(2034, 6, 30),
    )
)
FRAMES = ("obama_1.jpg", "obama_2.jpg", "obama_1.jpg")
ACTIONS = ("turn_right", "open_mouth")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    require_face_models()
    return sqlite_instance(tmp_path)


@pytest.fixture
def pm() -> pluggy.PluginManager:
    manager = new_plugin_manager(autoload=False)
    assert manager.is_registered(authority_status)
    manager.register(AuthorityPhotos({NUMBER: "obama_2.jpg"}), name="test_authority")
    return manager


@pytest.fixture
async def client(
    settings: Settings, pm: pluggy.PluginManager
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(create_app(settings, plugin_manager=pm)) as c:
        yield c


def _services(client: AsyncTestClient[Litestar]) -> Any:
    return client.app.state.services


async def _enroll(client: AsyncTestClient[Litestar], device: HolderDevice) -> dict[str, Any]:
    challenge = await _services(client).enrollment.issue_challenge(actions=ACTIONS)
    files = [("frames", (name, (FACES / name).read_bytes(), "image/jpeg")) for name in FRAMES]
    files.append(("capture", ("obama_3.jpg", (FACES / "obama_3.jpg").read_bytes(), "image/jpeg")))
    response = await client.post(
        "/enrollments",
        data={
            "challenge_nonce": challenge.nonce,
            "declared_name": DECLARED_NAME,
            "device_public_key": base64.b64encode(device.public_key_der).decode(),
            "mrz": MRZ,
        },
        files=files,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def _signed(
    client: AsyncTestClient[Litestar],
    device: HolderDevice,
    subject_id: str,
    method: str,
    path: str,
    body: bytes = b"",
) -> Any:
    header = sign_request(device.private_key, subject_id, method, path, body)
    return await client.request(
        method, path, content=body or None, headers={"authorization": header}
    )


@pytest.mark.anyio
async def test_enroll_get_a_pass_verify_and_revoke(client: AsyncTestClient[Litestar]) -> None:
    svc = _services(client)
    device = HolderDevice.generate("ES256")
    enrolled = await _enroll(client, device)
    assert enrolled["outcome"] == "created"
    assert enrolled["reference"] == "reference_photo"
    assert enrolled["subject"]["masked_name"] == "QUARTERMAINE"
    assert enrolled["subject"]["masked_number"] == "Q1****67"
    assert enrolled["status"]["colour"] == "green"
    subject_id = enrolled["subject"]["subject_id"]

    status = await _signed(client, device, subject_id, "GET", "/me/status")
    assert status.status_code == 200, status.text
    assert status.json()["label_zh"] == "未见异常"

    issued = await _signed(client, device, subject_id, "POST", "/me/passes")
    assert issued.status_code == 201, issued.text
    pass_text = issued.json()["text"]
    assert pass_text.startswith("HC1:")

    guard = await create_token(svc.db, "guard", "gate 3")
    admin = await create_token(svc.db, "admin", "operator")
    presentation = device.present(pass_text)
    verdict = await client.post(
        "/guard/verifications",
        json={"presentation": presentation},
        headers={"authorization": f"Bearer {guard}"},
    )
    assert verdict.status_code == 200
    body = verdict.json()
    assert (body["ok"], body["colour"], body["masked_name"]) == (True, "green", "QUARTERMAINE")
    assert body["issuer"] == "110000"
    assert NUMBER not in verdict.text

    # The authority lists the holder: the pass issued this morning is revoked.
    listing = f"kind,number,issuing_state,status\npassport,{NUMBER},GBR,red\n".encode()
    imported = await client.post(
        "/admin/status-imports",
        data={
            "day": dt.datetime.now(dt.UTC)
            .astimezone(dt.timezone(dt.timedelta(hours=8)))
            .date()
            .isoformat()
        },
        files=[("file", ("list.csv", listing, "text/csv"))],
        headers={"authorization": f"Bearer {admin}"},
    )
    assert imported.status_code == 201, imported.text
    assert (imported.json()["imported"], imported.json()["passes_revoked"]) == (1, 1)

    refused = await client.post(
        "/guard/verifications",
        json={"presentation": device.present(pass_text)},
        headers={"authorization": f"Bearer {guard}"},
    )
    assert (refused.json()["ok"], refused.json()["code"]) == (False, "revoked")
    assert "HCR1:" in (await client.get("/public/revocations")).json()["text"]
    red = await _signed(client, device, subject_id, "GET", "/me/status")
    assert red.json()["colour"] == "red"


@pytest.mark.anyio
async def test_roles_and_device_signatures_are_enforced(
    client: AsyncTestClient[Litestar],
) -> None:
    svc = _services(client)
    device = HolderDevice.generate("EdDSA")
    subject_id = (await _enroll(client, device))["subject"]["subject_id"]
    guard = await create_token(svc.db, "guard", "gate")

    # No credentials, a guard token on an admin route, a forged token.
    assert (await client.get("/me/status")).status_code == 401
    response = await client.post("/admin/purge", headers={"authorization": f"Bearer {guard}"})
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    forged = guard[:-4] + "AAAA"
    response = await client.post(
        "/guard/verifications",
        json={"presentation": "HCP1:x"},
        headers={"authorization": f"Bearer {forged}"},
    )
    assert (response.status_code, response.json()["code"]) == (401, "invalid_token")

    # Another device cannot act for this holder; a signature for another path fails.
    other = HolderDevice.generate("ES256")
    response = await _signed(client, other, subject_id, "GET", "/me/status")
    assert (response.status_code, response.json()["code"]) == (401, "device_signature_invalid")
    header = sign_request(device.private_key, subject_id, "GET", "/me/dependants")
    response = await client.get("/me/status", headers={"authorization": header})
    assert response.status_code == 401
    stale = sign_request(
        device.private_key,
        subject_id,
        "GET",
        "/me/status",
        now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5),
    )
    response = await client.get("/me/status", headers={"authorization": stale})
    assert (response.status_code, response.json()["code"]) == (401, "stale_request")

    # A guard verifying garbage gets a coded refusal, never a 5xx.
    response = await client.post(
        "/guard/verifications",
        json={"presentation": "HCP1:NOT-BASE45!"},
        headers={"authorization": f"Bearer {guard}"},
    )
    assert response.status_code == 200
    assert response.json()["ok"] is False
    assert response.json()["code"] == "malformed_pass"


@pytest.mark.anyio
async def test_enrollment_bad_input_is_coded_and_writes_nothing(
    client: AsyncTestClient[Litestar],
) -> None:
    device = HolderDevice.generate("ES256")
    challenge = await _services(client).enrollment.issue_challenge(actions=ACTIONS)
    base = {
        "challenge_nonce": challenge.nonce,
        "declared_name": DECLARED_NAME,
        "device_public_key": base64.b64encode(device.public_key_der).decode(),
        "mrz": MRZ,
    }
    not_image = [("capture", ("x.jpg", b"not an image", "image/jpeg"))]
    response = await client.post("/enrollments", data=base, files=not_image)
    assert response.status_code == 422
    assert response.json()["code"] == "not_an_image"
    files = [("frames", (n, (FACES / n).read_bytes(), "image/jpeg")) for n in FRAMES]
    files.append(("capture", ("c.jpg", (FACES / "biden_1.jpg").read_bytes(), "image/jpeg")))
    response = await client.post(
        "/enrollments", data=base | {"declared_name": "SOMEONE ELSE"}, files=files
    )
    assert response.status_code == 422
    assert response.json()["code"] == "name_mismatch"
    # The face plugin's quality gates apply to the live capture.
    files[-1] = (
        "capture",
        ("c.jpg", (FACES / "obama_partial_face.jpg").read_bytes(), "image/jpeg"),
    )
    fresh = await _services(client).enrollment.issue_challenge(actions=ACTIONS)
    response = await client.post(
        "/enrollments", data=base | {"challenge_nonce": fresh.nonce}, files=files
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "capture_unusable"
    assert response.json()["details"]["problem"] == "face_out_of_frame"
    async with _services(client).db.begin() as conn:
        import sqlalchemy as sa

        from healthcode.core.storage import tables

        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(tables.subjects))
        ).scalar_one() == 0


@pytest.mark.anyio
async def test_assisted_check_needs_a_guard_and_an_eligible_age(
    client: AsyncTestClient[Litestar],
) -> None:
    guard = await create_token(_services(client).db, "guard", "helper desk")
    headers = {"authorization": f"Bearer {guard}"}
    elder = "11010519491231002X"  # born 1949: over 60
    response = await client.post("/guard/assisted-checks", json={"number": elder}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["masked_number"] == "11**************2X"
    assert body["status"]["colour"] == "green"
    adult = "110105199001011232"  # born 1990
    response = await client.post("/guard/assisted-checks", json={"number": adult}, headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "assist_not_eligible"
    assert (await client.post("/guard/assisted-checks", json={"number": elder})).status_code == 401
    json.dumps(body)


def test_tokens_cli_create_list_revoke(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from healthcode.cli.main import app

    url = f"sqlite:///{tmp_path / 'hc.db'}"
    secrets = tmp_path / "secrets.json"
    asyncio.run(init_instance(url, secrets))
    common = ["--database", url, "--secrets-file", str(secrets), "--json"]
    runner = CliRunner()
    created = runner.invoke(
        app, ["tokens", "create", "--role", "guard", "--label", "gate 3", *common]
    )
    assert created.exit_code == 0, created.output
    token = json.loads(created.stdout)["token"]
    assert token.startswith("hc_guard_")
    listed = json.loads(runner.invoke(app, ["tokens", "list", *common]).stdout)
    assert [(t["role"], t["label"], t["revoked_at"]) for t in listed] == [("guard", "gate 3", None)]
    assert token.split(".")[1] not in json.dumps(listed)
    token_id = listed[0]["token_id"]
    assert runner.invoke(app, ["tokens", "revoke", token_id, *common]).exit_code == 0
    assert runner.invoke(app, ["tokens", "revoke", token_id, *common]).exit_code == 1
    bad_role = runner.invoke(app, ["tokens", "create", "--role", "root", "--label", "x", *common])
    assert bad_role.exit_code == 2


@pytest.mark.anyio
async def test_mutual_recognition_through_the_admin_api(
    client: AsyncTestClient[Litestar], tmp_path: Path
) -> None:
    """A Tianjin (120000) pass fails in this Beijing instance until an admin
    adds Tianjin's signed export, verifies after, and fails once removed."""
    from healthcode.core.models import Colour, MaskedDocument
    from healthcode.core.passes import export_issuer, issue_pass

    svc = _services(client)
    admin = {"authorization": f"Bearer {await create_token(svc.db, 'admin', 'operator')}"}
    guard = {"authorization": f"Bearer {await create_token(svc.db, 'guard', 'gate')}"}
    tianjin = KeyStore(tmp_path / "tianjin")
    tianjin.init("120000", "天津市", alg="EdDSA")
    device = HolderDevice.generate("ES256")
    signing = tianjin.active()
    issued = issue_pass(
        signing.private_key,
        signing.kid,
        region_code="120000",
        colour=Colour.GREEN,
        masked=MaskedDocument("passport", "QUARTERMAINE", "Q1****67"),
        holder_key=device.public_key,
        now=dt.datetime.now(dt.UTC),
    )

    async def verify() -> dict[str, Any]:
        response = await client.post(
            "/guard/verifications",
            json={"presentation": device.present(issued.text)},
            headers=guard,
        )
        return response.json()  # type: ignore[no-any-return]

    assert (await verify())["code"] == "unknown_issuer"
    added = await client.post(
        "/admin/trust", json={"export": export_issuer(tianjin)}, headers=admin
    )
    assert added.status_code == 201, added.text
    assert added.json()["region_code"] == "120000"
    accepted = await verify()
    assert (accepted["ok"], accepted["issuer"]) == (True, "120000")
    regions = {i["region_code"] for i in (await client.get("/admin/trust", headers=admin)).json()}
    assert regions == {"110000", "120000"}
    assert (await client.delete("/admin/trust/120000", headers=admin)).status_code == 204
    assert (await client.delete("/admin/trust/120000", headers=admin)).status_code == 404
    assert (await verify())["code"] == "unknown_issuer"
    # Our own key rotates; the list shows the old key kept for verification.
    rotated = await client.post("/admin/keys/rotations", json={}, headers=admin)
    assert rotated.status_code == 201
    keys = (await client.get("/admin/keys", headers=admin)).json()
    assert len(keys) == 2 and sum(k["retired_at"] is None for k in keys) == 1
    # Guards may not administer.
    assert (await client.get("/admin/keys", headers=guard)).status_code == 403


@pytest.mark.anyio
async def test_per_guard_rate_limit(settings: Settings, pm: pluggy.PluginManager) -> None:
    limited = attrs.evolve(settings, caller_rate_per_minute=3)
    async with AsyncTestClient(create_app(limited, plugin_manager=pm)) as client:
        guard = await create_token(_services(client).db, "guard", "gate")
        headers = {"authorization": f"Bearer {guard}"}
        codes = [
            (
                await client.post(
                    "/guard/verifications", json={"presentation": "HCP1:x"}, headers=headers
                )
            ).status_code
            for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        last = await client.post(
            "/guard/verifications", json={"presentation": "HCP1:x"}, headers=headers
        )
        assert last.json()["code"] == "rate_limited"
        assert int(last.headers["retry-after"]) >= 1


def _jpeg(name: str, *, mirrored: bool = False) -> bytes:
    import io

    from PIL import Image as PILImage
    from PIL import ImageOps

    picture = PILImage.open(FACES / name).convert("RGB")
    if mirrored:
        picture = ImageOps.mirror(picture)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=95)
    return out.getvalue()


@pytest.mark.anyio
async def test_face_only_renewal_and_a_dependant_over_http(
    client: AsyncTestClient[Litestar], pm: pluggy.PluginManager
) -> None:
    svc = _services(client)
    device = HolderDevice.generate("ES256")
    subject_id = (await _enroll(client, device))["subject"]["subject_id"]

    # Face-only renewal: a new challenge, no document.
    challenge = await svc.enrollment.issue_challenge(purpose="renew", actions=ACTIONS)
    files = [("frames", (n, (FACES / n).read_bytes(), "image/jpeg")) for n in FRAMES]
    files.append(("capture", ("c.jpg", (FACES / "obama_1.jpg").read_bytes(), "image/jpeg")))
    renewed = await signed_multipart(
        client, device, subject_id, "/me/renewals", {"challenge_nonce": challenge.nonce}, files
    )
    assert renewed.status_code == 201, renewed.text
    assert renewed.json()["status"]["colour"] == "green"
    assert all(w["severity"] == "warning" for w in renewed.json()["warnings"])

    # Another person's face cannot renew this holder.
    challenge = await svc.enrollment.issue_challenge(purpose="renew", actions=("turn_right",))
    stranger = [
        ("frames", ("a.jpg", _jpeg("biden_2.jpg"), "image/jpeg")),
        ("frames", ("b.jpg", _jpeg("biden_1.jpg", mirrored=True), "image/jpeg")),
        ("frames", ("c.jpg", _jpeg("biden_2.jpg"), "image/jpeg")),
        ("capture", ("d.jpg", _jpeg("biden_1.jpg"), "image/jpeg")),
    ]
    refused = await signed_multipart(
        client, device, subject_id, "/me/renewals", {"challenge_nonce": challenge.nonce}, stranger
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "face_mismatch")

    # A dependant (他人代查) with their own document and a one-time face check.
    dependant_number = "11010519491231002X"
    authority = pm.get_plugin("test_authority")
    authority.photos[dependant_number] = "biden_2.jpg"
    challenge = await svc.enrollment.issue_challenge(purpose="dependant", actions=("turn_right",))
    added = await signed_multipart(
        client,
        device,
        subject_id,
        "/me/dependant-enrollments",
        {
            "challenge_nonce": challenge.nonce,
            "declared_name": "张三",
            "number": dependant_number,
        },
        stranger,
    )
    assert added.status_code == 201, added.text
    assert added.json()["subject"]["masked_number"] == "11**************2X"
    # A typed resident ID carries no name: the holder is told it was not compared.
    notes = {w["code"]: w for w in added.json()["warnings"]}
    assert "name_not_verified" in notes and notes["name_not_verified"]["message_zh"]
    listed = await _signed(client, device, subject_id, "GET", "/me/dependants")
    assert [d["slot"] for d in listed.json()] == [1]
    assert "warnings" not in listed.json()[0]
    assert dependant_number not in listed.text
