"""The conformance suite for document plugins (``check_document_plugin``).

The rules (names as in ``conformance.RULES["document"]``):

* ``hook_names`` -- every hook is a ``healthcode_`` hook with the spec's arguments;
* ``document_types`` -- ``DocumentType`` records, snake_case kinds, names in
  English and Chinese, inputs among ``number``, ``mrz``, ``image``; a
  published ``example`` parses as its kind without errors;
* ``samples_parse`` -- every sample the author gives parses, without errors,
  into a document of a kind the plugin registers (of the kind named, if one is);
* ``declared_inputs`` -- each declared text input (``number``, ``mrz``) has a
  sample that parses; an undeclared one, with the plugin's own kind named,
  gets ``None`` (core then says the kind cannot be read from that input);
* ``other_kinds_get_none`` -- a submission naming another kind gets ``None``
  from parsing, a document of another kind gets ``None`` from masking and
  nothing from validation, never an exception;
* ``hostile_input`` -- generated input (random text, and each sample with a
  character replaced, dropped, added or swapped; hypothesis) gets a document,
  ``None``, or a ``DocumentError``: never another exception;
* ``bilingual_messages`` -- every error and problem has a stable snake_case
  code and a message in English and in Chinese;
* ``no_personal_data`` -- no number or name in any message, error, ``repr``,
  problem detail or log line;
* ``masking`` -- only the first and last 2 characters of the number are
  kept, and only the surname of the name;
* ``normalisation_idempotent`` -- a parsed number parses again (its kind
  named) to the same number: the canonical form is a fixed point;
* ``validate`` -- the day's rules return ``Problem`` records, bilingual.

Throughput of ``healthcode_parse_document`` over the samples is reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, get_args

import attrs
import pluggy

from healthcode.core.errors import DocumentError, InputError
from healthcode.core.models import (
    Document,
    DocumentSubmission,
    DocumentType,
    InputKind,
    MaskedDocument,
    Problem,
)
from healthcode.core.privacy import MASK_CHAR, chinese_surname
from healthcode.core.text import normalise_mrz, normalise_number
from healthcode.testing.conformance import (
    RULES,
    ConformanceError,
    ConformanceReport,
    captured_logs,
    check_bilingual,
    check_error,
    check_secret_free,
    generate_only_phases,
    plugin_manager_for,
    plugin_name,
    throughput,
)

__all__ = ["OTHER_KIND", "check_document_plugin"]

OTHER_KIND = "conformance_other_kind"
"""A kind no plugin registers: submissions naming it are never a plugin's."""

_TEXT_INPUTS: tuple[InputKind, ...] = ("number", "mrz")
_DAY = dt.date(2026, 11, 26)
_NUMBER_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MRZ_CHARS = _NUMBER_CHARS + "<\n"


@attrs.define
class _Run:
    pm: pluggy.PluginManager
    types: dict[str, DocumentType]
    examples: int = 0

    def parse(self, submission: DocumentSubmission) -> Document | DocumentError | None:
        """One call of the parse hook, its outcome and log lines checked."""
        with captured_logs() as lines:
            try:
                outcome = self.pm.hook.healthcode_parse_document(submission=submission)
            except DocumentError as error:
                outcome = error
            except Exception as exc:
                raise ConformanceError(
                    "hostile_input",
                    f"healthcode_parse_document raised {type(exc).__name__} for a "
                    f"{_describe(submission)}; only DocumentError subclasses may be raised",
                ) from exc
        self.check_outcome(submission, outcome, lines)
        return outcome  # type: ignore[no-any-return]

    def check_outcome(
        self, submission: DocumentSubmission, outcome: object, lines: list[str]
    ) -> None:
        secrets = _input_secrets(submission)
        texts = {f"log line {i}": line for i, line in enumerate(lines)}
        if isinstance(outcome, DocumentError):
            check_error("bilingual_messages", outcome)
            texts |= _error_texts(outcome)
        elif isinstance(outcome, Document):
            self.check_document(submission, outcome)
            secrets += _document_secrets(outcome)
            texts |= _document_texts(outcome)
        elif outcome is not None:
            raise ConformanceError(
                "samples_parse",
                f"healthcode_parse_document returned {type(outcome).__name__}, "
                "expected a Document or None",
            )
        check_secret_free(texts, secrets)

    def check_document(self, submission: DocumentSubmission, document: Document) -> None:
        if document.kind not in self.types:
            raise ConformanceError(
                "samples_parse", f"a parsed document has the kind {document.kind!r}, not registered"
            )
        # Asked for one of its kinds, a plugin may answer another of its own
        # (the passport plugin reads a TD1 MRZ as a travel ID, with a warning).
        for problem in document.problems:
            _check_problem(problem)


def _describe(submission: DocumentSubmission) -> str:
    text = submission.number if submission.number is not None else submission.mrz
    field = "number" if submission.number is not None else "mrz"
    return f"{field} of {len(text or '')} characters (kind {submission.kind!r})"


def _input_secrets(submission: DocumentSubmission) -> list[str]:
    # Short inputs may match a message by chance ("18", "MRZ"): only long ones count.
    texts = [submission.number or "", *(submission.mrz or "").split("\n")]
    return [text.strip("<") for text in texts if len(text.strip("<")) >= 10]


def _document_secrets(document: Document) -> list[str]:
    names = [document.surname, document.given_names, document.name_zh]
    found = [name for name in names if name and len(name) >= 3]
    if len(document.number) >= 6:
        found.append(document.number)
    return found


def _error_texts(error: DocumentError) -> dict[str, str]:
    return {
        "the error's English message": error.message_en,
        "the error's Chinese message": error.message_zh,
        "str(error)": str(error),
        "repr(error)": repr(error),
        "the error's details": repr(error.details),
    }


def _document_texts(document: Document) -> dict[str, str]:
    texts = {"repr(document)": repr(document)}
    for problem in document.problems:
        texts[f"problem {problem.code}"] = " ".join(
            (problem.message_en, problem.message_zh, repr(problem.details), repr(problem))
        )
    return texts


def _check_problem(problem: object) -> None:
    if not isinstance(problem, Problem):
        raise ConformanceError("validate", f"a problem is a {type(problem).__name__}, not Problem")
    check_bilingual("bilingual_messages", "a problem", problem.code, *_messages(problem))
    if problem.severity not in ("error", "warning"):
        raise ConformanceError("validate", f"problem {problem.code!r} has an unknown severity")


def _messages(problem: Problem) -> tuple[str, str]:
    return problem.message_en, problem.message_zh


# --- registration and samples ------------------------------------------------------


def _document_types(pm: pluggy.PluginManager) -> dict[str, DocumentType]:
    types: dict[str, DocumentType] = {}
    allowed = set(get_args(InputKind))
    for result in pm.hook.healthcode_document_types():
        for record in result or ():
            if not isinstance(record, DocumentType):
                raise ConformanceError(
                    "document_types", f"a record is a {type(record).__name__}, not DocumentType"
                )
            check_bilingual(
                "document_types", "a document type", record.kind, record.name_en, record.name_zh
            )
            if record.kind in types:
                raise ConformanceError("document_types", f"kind {record.kind!r} registered twice")
            if not record.inputs or not set(record.inputs) <= allowed:
                raise ConformanceError(
                    "document_types", f"kind {record.kind!r} declares inputs outside {allowed}"
                )
            types[record.kind] = record
    if not types:
        raise ConformanceError("document_types", "the plugin registers no document kind")
    return types


def _example_submission(record: DocumentType) -> DocumentSubmission | None:
    if record.example is None:
        return None
    looks_like_mrz = "<" in record.example or "\n" in record.example
    if "mrz" in record.inputs and looks_like_mrz:
        return DocumentSubmission(kind=record.kind, mrz=normalise_mrz(record.example)[0])
    if "number" in record.inputs and not looks_like_mrz:
        return DocumentSubmission(kind=record.kind, number=normalise_number(record.example))
    return None


def _parse_samples(
    run: _Run, samples: Sequence[DocumentSubmission]
) -> list[tuple[DocumentSubmission, Document]]:
    examples = [_example_submission(record) for record in run.types.values()]
    parsed = []
    for submission in [*samples, *(e for e in examples if e is not None)]:
        outcome = run.parse(submission)
        if not isinstance(outcome, Document):
            raise ConformanceError(
                "samples_parse",
                f"a sample {_describe(submission)} did not parse "
                f"({outcome.code if outcome is not None else 'None'})",
            )
        errors = [p.code for p in outcome.problems if p.severity == "error"]
        if errors:
            raise ConformanceError(
                "samples_parse", f"a sample {_describe(submission)} has errors: {errors}"
            )
        parsed.append((submission, outcome))
    return parsed


def _check_declared_inputs(
    run: _Run, parsed: list[tuple[DocumentSubmission, Document]], skipped: dict[str, str]
) -> None:
    for kind, record in run.types.items():
        for field in _TEXT_INPUTS:
            given = [s for s, d in parsed if d.kind == kind and getattr(s, field) is not None]
            if field in record.inputs and not given:
                raise ConformanceError(
                    "declared_inputs",
                    f"kind {kind!r} declares input {field!r} but no sample of it was given",
                )
            if field not in record.inputs:
                _check_undeclared(run, kind, field, parsed)
        if "image" in record.inputs:
            skipped["declared_inputs:image"] = "images are read by the OCR plugin, not parsed here"


def _check_undeclared(
    run: _Run, kind: str, field: str, parsed: list[tuple[DocumentSubmission, Document]]
) -> None:
    texts = [s.number or s.mrz or "" for s, _ in parsed] or ["A1234567"]
    for text in texts:
        if field == "mrz" and "\n" not in text:
            continue
        submission = (
            DocumentSubmission(kind=kind, number=text)
            if field == "number"
            else DocumentSubmission(kind=kind, mrz=text)
        )
        if isinstance(run.parse(submission), Document):
            raise ConformanceError(
                "declared_inputs",
                f"kind {kind!r} does not declare input {field!r} but parsed one",
            )


# --- per document ---------------------------------------------------------------------


def _check_masking(run: _Run, document: Document) -> None:
    masked = run.pm.hook.healthcode_mask_document(document=document)
    if masked is None:
        return  # core masks generically
    if not isinstance(masked, MaskedDocument) or masked.kind != document.kind:
        raise ConformanceError("masking", "the mask hook did not return this kind's MaskedDocument")
    number, shown = document.number, masked.masked_number
    if len(shown) != len(number):
        raise ConformanceError("masking", "the masked number is not as long as the number")
    for i, (kept, original) in enumerate(zip(shown, number, strict=True)):
        end = i < 2 or i >= len(number) - 2
        if kept != MASK_CHAR and not (end and kept == original):
            raise ConformanceError(
                "masking",
                f"character {i + 1} of the number is shown; only the first and last 2 may be",
            )
    _check_masked_name(document, masked.masked_name)


def _check_masked_name(document: Document, name: str) -> None:
    allowed = [document.surname or ""]
    if document.name_zh:
        allowed.append(chinese_surname(document.name_zh))
    if not any(len(name) <= len(surname) for surname in allowed):
        raise ConformanceError("masking", "the masked name is longer than the surname")
    given = document.given_names
    if given and len(given) >= 2 and given in name:
        raise ConformanceError("masking", "the masked name shows the given names")


def _check_idempotent(run: _Run, submission: DocumentSubmission, document: Document) -> None:
    if "number" not in run.types[document.kind].inputs or submission.number is None:
        again = run.parse(submission)
        if not isinstance(again, Document) or again.number != document.number:
            raise ConformanceError(
                "normalisation_idempotent", "parsing the same input twice gave another number"
            )
        return
    try:
        canonical = normalise_number(document.number)
    except InputError as exc:
        raise ConformanceError(
            "normalisation_idempotent", "the parsed number is not in normalised form"
        ) from exc
    again = run.parse(DocumentSubmission(kind=document.kind, number=canonical))
    if not isinstance(again, Document) or again.number != document.number:
        raise ConformanceError(
            "normalisation_idempotent",
            "the parsed number, parsed again with its kind named, is not the same number",
        )


def _check_validate(run: _Run, document: Document) -> None:
    foreign = attrs.evolve(document, kind=OTHER_KIND)
    for result in run.pm.hook.healthcode_validate_document(document=foreign, today=_DAY):
        if result:
            raise ConformanceError("other_kinds_get_none", "problems reported for another kind")
    for result in run.pm.hook.healthcode_validate_document(document=document, today=_DAY):
        for problem in result or ():
            _check_problem(problem)
            check_secret_free(
                _document_texts(attrs.evolve(document, problems=(problem,))),
                _document_secrets(document),
            )
    if run.pm.hook.healthcode_mask_document(document=foreign) is not None:
        raise ConformanceError("other_kinds_get_none", "the mask hook answered for another kind")


def _check_other_kinds(run: _Run, parsed: list[tuple[DocumentSubmission, Document]]) -> None:
    for submission, _document in parsed:
        other = attrs.evolve(submission, kind=OTHER_KIND)
        if run.parse(other) is not None:
            raise ConformanceError(
                "other_kinds_get_none", "a submission naming another kind did not get None"
            )


# --- generated input -------------------------------------------------------------------


def _mutate(item: tuple[str, int, str, str]) -> str:
    text, at, op, char = item
    if not text:
        return char
    i = at % len(text)
    if op == "replace":
        return text[:i] + char + text[i + 1 :]
    if op == "drop":
        return text[:i] + text[i + 1 :]
    if op == "add":
        return text[:i] + char + text[i:]
    if op == "swap" and i + 1 < len(text):
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text[:i]  # truncate


def _strategies(seeds: list[str], chars: str) -> Any:
    from hypothesis import strategies as st

    mutated = st.tuples(
        st.sampled_from(seeds or [""]),
        st.integers(0, 120),
        st.sampled_from(["replace", "drop", "add", "swap", "truncate"]),
        st.sampled_from(chars),
    ).map(_mutate)
    return st.one_of(mutated, st.text(alphabet=chars, max_size=90), st.text(max_size=90))


def _check_hostile(
    run: _Run, parsed: list[tuple[DocumentSubmission, Document]], max_examples: int
) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    kinds: list[str | None] = [None, *run.types]
    numbers = [s.number for s, _ in parsed if s.number is not None]
    mrzs = [s.mrz for s, _ in parsed if s.mrz is not None]

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=generate_only_phases(),
    )
    @given(
        kind=st.sampled_from(kinds),
        field=st.sampled_from(_TEXT_INPUTS),
        number=_strategies(numbers, _NUMBER_CHARS),
        mrz=_strategies(mrzs, _MRZ_CHARS),
    )
    def hostile(kind: str | None, field: str, number: str, mrz: str) -> None:
        run.examples += 1
        try:
            submission = (
                DocumentSubmission(kind=kind, number=normalise_number(number))
                if field == "number"
                else DocumentSubmission(kind=kind, mrz=normalise_mrz(mrz)[0])
            )
        except InputError:
            return  # core refuses it before any plugin sees it
        outcome = run.parse(submission)
        if isinstance(outcome, Document):
            _check_masking(run, outcome)

    hostile()


def check_document_plugin(
    plugin: object,
    samples: Sequence[DocumentSubmission] = (),
    *,
    max_examples: int = 200,
    name: str | None = None,
) -> ConformanceReport:
    """Check a document plugin against every rule; raise ``ConformanceError`` at the first broken.

    :param plugin: the plugin module or object, as its entry point loads it.
    :param samples: valid submissions (normalised text: upper-case, no spaces;
        MRZ lines joined by ``\\n``), at least one per declared text input of
        each kind; each kind's ``DocumentType.example`` is added to them.
    :param max_examples: how many generated inputs hypothesis tries.
    :param name: the plugin's name in the report (its module name by default).
    """
    pm = plugin_manager_for(plugin, name)
    run = _Run(pm, _document_types(pm))
    skipped: dict[str, str] = {}
    parsed = _parse_samples(run, samples)
    _check_declared_inputs(run, parsed, skipped)
    for submission, document in parsed:
        _check_masking(run, document)
        _check_idempotent(run, submission, document)
        _check_validate(run, document)
    _check_other_kinds(run, parsed)
    _check_hostile(run, parsed, max_examples)
    rate = throughput(lambda: [pm.hook.healthcode_parse_document(submission=s) for s, _ in parsed])
    passed = tuple(rule for rule in RULES["document"] if rule not in skipped)
    return ConformanceReport(
        plugin=name or plugin_name(plugin),
        kind="document",
        passed=passed,
        skipped=skipped,
        throughput={"parse_document": rate * max(len(parsed), 1)},
        examples=run.examples,
    )
