"""Every built-in plugin passes the plugin kit's conformance suite, the same
one a third-party plugin's tests call (``healthcode.testing.conformance``)."""

from __future__ import annotations

import random
import shutil

import pytest
from support.data import DOCUMENTS, FACES, TODAY
from support.faces import require_face_models

from healthcode.core.models import DocumentSubmission
from healthcode.core.text import normalise_mrz
from healthcode.plugins import (
    authority_status,
    face,
    fpr_card,
    hkmo_permit,
    id_card,
    mrz_ocr,
    passport,
    peer_status,
)
from healthcode.testing import permits
from healthcode.testing.conformance import (
    RULES,
    check_document_plugin,
    check_face_engine,
    check_ocr_engine,
    check_status_source,
)
from healthcode.testing.mrz import random_mrz

TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"


def _kept_every_rule(report_passed: tuple[str, ...], kind: str) -> None:
    assert set(report_passed) == set(RULES[kind])


def test_id_card() -> None:
    report = check_document_plugin(
        id_card,
        [
            DocumentSubmission(number="11010519491231002X"),
            DocumentSubmission(number="440524188001010014"),
            DocumentSubmission(kind="cn_resident_id", number="610104620927690"),
        ],
    )
    _kept_every_rule(report.passed, "document")
    assert report.examples >= 100 and report.throughput["parse_document"] > 0


def test_fpr_card() -> None:
    report = check_document_plugin(
        fpr_card,
        [
            DocumentSubmission(number="932682198501010017"),
            DocumentSubmission(kind="cn_foreign_permanent_resident_id", number="KAZ110090123105"),
        ],
    )
    _kept_every_rule(report.passed, "document")


def test_passport() -> None:
    rng = random.Random(14)
    samples = [
        DocumentSubmission(kind="passport", number="E12345678", issuing_state="CHN"),
        DocumentSubmission(mrz=TD3),
        *(
            DocumentSubmission(mrz=normalise_mrz(random_mrz(rng, layout, today=TODAY)[0])[0])
            for layout in ("TD1", "TD2", "TD3")
        ),
    ]
    report = check_document_plugin(passport, samples)
    assert set(report.passed) == set(RULES["document"])
    assert "declared_inputs:image" in report.skipped


def _permit_samples() -> list[DocumentSubmission]:
    rng = random.Random(14)
    samples = [
        DocumentSubmission(kind=kind, number=permits.random_number(rng, kind))
        for kind in hkmo_permit.KINDS
    ]
    samples += [
        DocumentSubmission(kind=kind, mrz=permits.random_mrz_sample(rng, kind).mrz)
        for kind in permits.MRZ_CODE_BY_KIND
    ]
    return samples


def test_hkmo_permit() -> None:
    check_document_plugin(hkmo_permit, _permit_samples())


@pytest.mark.parametrize("plugin", [authority_status, peer_status], ids=["authority", "peer"])
def test_status_sources(plugin: object) -> None:
    report = check_status_source(plugin)
    _kept_every_rule(report.passed, "status-source")
    assert report.throughput["resolve_status"] > 0


def test_face_engine() -> None:
    require_face_models()
    report = check_face_engine(face, face_photo=(FACES / "obama_1.jpg").read_bytes())
    _kept_every_rule(report.passed, "face")
    assert report.throughput["detect_faces"] > 0


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed")
def test_ocr_engine() -> None:
    report = check_ocr_engine(
        mrz_ocr,
        document_photo=(DOCUMENTS / "specimen_passport_td3.png").read_bytes(),
        expected_mrz=TD3,
    )
    _kept_every_rule(report.passed, "ocr")
