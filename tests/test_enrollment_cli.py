"""The enrollment CLI (``enroll``, ``dependants``, ``assist``), asserting on --json.

The commands are thin shells over ``healthcode.core.enrollment``, whose tests
run on both backends (tests/test_enrollment.py); here one SQLite file is
enough. Real photos and the real face plugin; the authority's reference photo
comes from the stand-in plugin in tests/support/faces.py, registered on the
process-wide plugin manager the CLI uses.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import typer
from support.data import FACES
from support.documents import passport_mrz, resident_id
from support.faces import (
    BIDEN,
    OBAMA,
    OBAMA_OTHER_WAY,
    AuthorityPhotos,
    Person,
    require_face_models,
)
from typer.testing import CliRunner

import healthcode.plugins.authority_status as authority_status
from healthcode.cli.enroll import assist_app, dependants_app, enroll_app
from healthcode.core.passes import HolderDevice
from healthcode.core.plugins import get_plugin_manager
from healthcode.core.storage.database import init_instance


@pytest.fixture
def instance(tmp_path: Path) -> list[str]:
    url = f"sqlite:///{tmp_path / 'hc.db'}"
    secrets = tmp_path / "secrets.json"
    asyncio.run(init_instance(url, secrets))
    return ["--database", url, "--secrets-file", str(secrets)]


@pytest.fixture
def authority() -> AuthorityPhotos:
    photos = AuthorityPhotos()
    pm = get_plugin_manager()  # a fresh one per test (conftest clears the cache)
    if not pm.is_registered(authority_status):
        pm.register(authority_status, name="authority_status")
    pm.register(photos, name="test_authority_photos")
    return photos


def invoke(app: typer.Typer, args: list[str], expect: int = 0) -> dict[str, Any]:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == expect, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def challenge(tmp_path: Path, instance: list[str], person: Person, purpose: str = "enroll") -> str:
    payload = invoke(
        enroll_app,
        [
            "challenge",
            "--purpose",
            purpose,
            "--actions",
            ",".join(person.actions),
            "--json",
            *instance,
        ],
    )
    assert payload["actions"] == list(person.actions)
    path = tmp_path / f"challenge-{payload['nonce'][:8]}.json"
    path.write_text(json.dumps(payload))
    return str(path)


def frame_files(tmp_path: Path, person: Person) -> list[str]:
    from PIL import Image as PILImage

    paths = []
    for name, mirrored in person.frames:
        if not mirrored:
            paths.append(str(FACES / name))
            continue
        target = tmp_path / f"mirrored-{name}"
        if not target.exists():
            PILImage.open(FACES / name).transpose(PILImage.Transpose.FLIP_LEFT_RIGHT).save(target)
        paths.append(str(target))
    return paths


def test_enroll_renew_dependants_and_assist(
    tmp_path: Path, instance: list[str], authority: AuthorityPhotos
) -> None:
    require_face_models()
    holder, child = resident_id(dt.date(1979, 9, 9)), resident_id(dt.date(2015, 3, 3))
    authority.photos.update({holder: OBAMA.reference, child: BIDEN.reference})
    # The private key file `passes device-key` writes: its public half is bound.
    key_file = tmp_path / "device.pem"
    HolderDevice.generate("ES256").save(key_file)

    def submit(person: Person, *extra: str, expect: int = 0) -> dict[str, Any]:
        return invoke(
            enroll_app,
            [
                "submit",
                "--kind",
                "cn_resident_id",
                "--number",
                holder,
                "--name",
                "王五",
                "--challenge",
                challenge(tmp_path, instance, person),
                "--capture",
                str(FACES / person.capture),
                "--device-key",
                str(key_file),
                *extra,
                "--json",
                *frame_files(tmp_path, person),
                *instance,
            ],
            expect,
        )

    enrolled = submit(OBAMA)
    assert enrolled["ok"] and enrolled["outcome"] == "created"
    assert enrolled["masked_name"] == "王"
    assert enrolled["masked_number"] == holder[:2] + "*" * 14 + holder[-2:]
    assert enrolled["status"]["colour"] == "green"
    assert enrolled["status"]["label_zh"] == "未见异常"
    assert enrolled["match"]["reference"] == "reference_photo"
    assert enrolled["device_key_registered"] is True
    assert [w["code"] for w in enrolled["warnings"]] == ["name_not_verified"]
    subject = enrolled["subject_id"]

    assert submit(OBAMA_OTHER_WAY)["outcome"] == "updated"
    refused = submit(BIDEN, expect=1)
    assert refused["error"]["code"] == "face_mismatch"

    renewed = invoke(
        enroll_app,
        [
            "renew",
            "--subject",
            subject,
            "--challenge",
            challenge(tmp_path, instance, OBAMA, "renew"),
            "--capture",
            str(FACES / "obama_1.jpg"),
            "--json",
            *frame_files(tmp_path, OBAMA),
            *instance,
        ],
    )
    assert renewed["subject_id"] == subject and renewed["status"]["colour"] == "green"
    assert all(w["severity"] == "warning" for w in renewed["warnings"])

    added = invoke(
        dependants_app,
        [
            "add",
            "--holder",
            subject,
            "--kind",
            "cn_resident_id",
            "--number",
            child,
            "--name",
            "王小明",
            "--challenge",
            challenge(tmp_path, instance, BIDEN, "dependant"),
            "--capture",
            str(FACES / BIDEN.capture),
            "--json",
            *frame_files(tmp_path, BIDEN),
            *instance,
        ],
    )
    assert added["slot"] == 1 and added["masked_name"] == "王"
    # A typed number carries no name: the holder is told, as at enrollment.
    assert "name_not_verified" in [w["code"] for w in added["warnings"]]
    listed = invoke(dependants_app, ["list", "--holder", subject, "--json", *instance])
    assert [d["masked_number"] for d in listed["dependants"]] == [added["masked_number"]]
    assert listed["dependants"][0]["status"]["colour"] == "green"

    checked = invoke(
        assist_app,
        ["check", "--operator", "desk-1", "-k", "cn_resident_id", "-n", child, "--json", *instance],
    )
    assert checked["masked_number"] == added["masked_number"]
    assert checked["status"]["colour"] == "green" and checked["display_seconds"] > 0
    adult = invoke(
        assist_app,
        [
            "check",
            "--operator",
            "desk-1",
            "-k",
            "cn_resident_id",
            "-n",
            holder,
            "--json",
            *instance,
        ],
        1,
    )
    assert adult["error"]["code"] == "assist_not_eligible"


def test_cli_refusals(tmp_path: Path, instance: list[str], authority: AuthorityPhotos) -> None:
    nonce_file = challenge(tmp_path, instance, OBAMA)
    base = [
        "submit",
        "--challenge",
        nonce_file,
        "--capture",
        str(FACES / "obama_3.jpg"),
        "--json",
        str(FACES / "obama_1.jpg"),
        *instance,
    ]
    expired = invoke(
        enroll_app,
        [*base, "--mrz", passport_mrz("K1234567", expiry=dt.date(2021, 1, 1)), "--name", "X Y"],
        1,
    )
    assert expired["error"]["code"] == "document_expired"
    mismatch = invoke(
        enroll_app, [*base, "--mrz", passport_mrz("K1234567"), "--name", "SMITH JOHN"], 1
    )
    assert mismatch["error"]["code"] == "name_mismatch"
    both = CliRunner().invoke(
        enroll_app, [*base, "--number", "K1", "--mrz", passport_mrz("K1"), "--name", "X"]
    )
    assert both.exit_code == 2
    unknown = invoke(dependants_app, ["list", "--holder", "ab" * 32, "--json", *instance], 1)
    assert unknown["error"]["code"] == "subject_not_found"
    bad_key = tmp_path / "bad.pem"
    bad_key.write_bytes(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    holder = resident_id(dt.date(1979, 9, 10))
    key = invoke(
        enroll_app,
        [
            *base,
            "-k",
            "cn_resident_id",
            "-n",
            holder,
            "--name",
            "王五",
            "--device-key",
            str(bad_key),
        ],
        1,
    )
    assert key["error"]["code"] == "device_key_invalid"


@pytest.mark.parametrize("text", ["[" * 5000, '{"nonce": ' + "9" * 5000 + "}", "{not json"])
def test_a_hostile_challenge_file_is_a_usage_error(tmp_path: Path, text: str) -> None:
    from healthcode.cli.enroll import nonce_from

    path = tmp_path / "challenge.json"
    path.write_text(text)
    with pytest.raises(typer.BadParameter):
        nonce_from(str(path))
