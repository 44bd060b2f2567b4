"""The holder page's own crypto, run under Node, checked by the Python side:
a live code built by js/holder/livecode.js passes healthcode's Verifier, and
a request signed by js/holder/device.js passes the HC-Device check."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import cbor2
import pytest
from support.passes import MASKED, NOW, Instance, at

from healthcode.core.auth import request_message
from healthcode.core.models import Colour
from healthcode.core.passes import issue_pass
from healthcode.core.passes.codec import load_public_der, unwrap, verify_raw
from healthcode.core.passes.passes import PRESENTATION_PREFIX, device_message

ROOT = Path(__file__).resolve().parents[1]
HOLDER_JS = ROOT / "healthcode" / "api" / "web" / "static" / "js" / "holder"
DRIVER = Path(__file__).parent / "js" / "livecode_driver.mjs"
NODE = shutil.which("node")
SUBJECT = "ab" * 32

pytestmark = [
    pytest.mark.slow,  # runs node in a subprocess
    pytest.mark.skipif(
        NODE is None, reason="node (20 or later) is not installed: the page's crypto is not checked"
    ),
]


def _node_run(bj: Instance, body: bytes, target: str) -> tuple[Any, dict[str, Any], Any]:
    """Start the driver, issue a pass to its key, get back what the page would send."""
    assert NODE is not None
    proc = subprocess.Popen(
        [NODE, str(DRIVER), HOLDER_JS.as_uri() + "/"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    first = proc.stdout.readline()
    assert first, proc.stderr.read() if proc.stderr else ""
    public = load_public_der(base64.b64decode(json.loads(first)["spki"]))
    key = bj.keys.active()
    issued = issue_pass(
        key.private_key,
        key.kid,
        region_code=bj.region,
        colour=Colour.YELLOW,
        masked=MASKED,
        holder_key=public,
        now=NOW,
    )
    request = {
        "pass": issued.text,
        "time_ms": int(at(2).timestamp() * 1000),
        "subject": SUBJECT,
        "method": "post",
        "target": target,
        "body_b64": base64.b64encode(body).decode(),
    }
    out, err = proc.communicate(json.dumps(request) + "\n", timeout=60)
    assert proc.returncode == 0, err
    return public, json.loads(out.strip().splitlines()[-1]), issued


@pytest.fixture(scope="module")
def node_answer(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Any, dict[str, Any], Any, Instance]:
    bj = Instance.create(tmp_path_factory.mktemp("web"), "110000", "北京市")
    public, answer, issued = _node_run(bj, b'{"purpose":"renew"}', "/me/status?day=2026-11-26")
    return public, answer, issued, bj


def test_the_page_reads_the_pass_it_is_given(node_answer: Any) -> None:
    _, answer, issued, _ = node_answer
    claims = issued.claims
    assert answer["claims"] == {
        "pass_id": claims.pass_id.hex(),
        "issuer": "110000",
        "colour": "yellow",
        "kind": MASKED.kind,
        "masked_name": MASKED.masked_name,
        "masked_number": MASKED.masked_number,
        "expires_at": claims.expires_at,
        "issued_at": claims.issued_at,
    }


def test_a_live_code_built_by_the_page_passes_the_verifier(node_answer: Any) -> None:
    _, answer, issued, bj = node_answer
    text = answer["presentation"]
    assert text.startswith(PRESENTATION_PREFIX)
    assert re.fullmatch(r"[0-9A-Z $%*+\-./:]+", text), "QR alphanumeric mode only"
    verdict = bj.verifier(now=at(3)).verify(text)
    assert verdict.ok and verdict.code == "accepted", verdict
    assert verdict.colour == Colour.YELLOW and not verdict.admit
    # The CBOR is byte for byte what the Python holder would encode.
    inner = unwrap(PRESENTATION_PREFIX, text)
    cose, time_ms, signature = cbor2.loads(inner)
    assert inner == cbor2.dumps([cose, time_ms, signature])
    assert time_ms == int(at(2).timestamp() * 1000)
    # ...and a stale one is refused like any other.
    assert bj.verifier(now=at(120)).verify(text).code == "stale_presentation"
    public = node_answer[0]
    assert verify_raw(public, signature, device_message(issued.claims.pass_id, time_ms))


def test_a_request_signed_by_the_page_passes_the_device_check(node_answer: Any) -> None:
    public, answer, _, _ = node_answer
    match = re.fullmatch(
        r"HC-Device subject=([0-9a-f]{64}), ts=(\d+), sig=([A-Za-z0-9_-]+)", answer["authorization"]
    )
    assert match is not None, answer["authorization"]
    subject, ts, sig = match.groups()
    assert subject == SUBJECT and int(ts) == int(at(2).timestamp() * 1000)
    signature = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    target = "/me/status?day=2026-11-26"
    body = b'{"purpose":"renew"}'
    assert verify_raw(public, signature, request_message("POST", target, int(ts), body))
    assert not verify_raw(public, signature, request_message("POST", "/me/status", int(ts), body))


def test_a_form_is_signed_as_the_bytes_sent(node_answer: Any) -> None:
    _, answer, _, _ = node_answer
    form = answer["form"]
    boundary = re.fullmatch(r"multipart/form-data; boundary=(.+)", form["type"])
    assert boundary is not None
    raw = base64.b64decode(form["b64"])
    assert b'name="challenge_nonce"\r\n\r\nn0\r\n' in raw
    assert b'filename="capture.jpg"' in raw and boundary.group(1).encode() in raw
