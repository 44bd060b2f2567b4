"""Checking many documents at once: the batch form of ``check_document``.

``check_document`` goes through pluggy for every row: three hook calls, each
building a keyword dict, walking the implementations and collecting results.
For a file of 200,000 numbers that dispatch costs more than the checks. A
:class:`DocumentChecker` resolves each hook's implementations once, in the
order pluggy calls them (``tryfirst``/``trylast`` included), and then calls
the plugin functions directly, row after row. The results are those of
``check_document`` row by row (``tests/test_documents_batch.py`` proves it
over generated inputs of every built-in kind).

Where pluggy would do more than call functions in order (a hook wrapper, an
implementation with keyword defaults, call tracing or monitoring switched on),
that hook keeps going through pluggy, so wrappers and tracers still see every
call. The implementations are resolved when the checker is made: a plugin
registered during a batch is seen by the next one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pluggy

from healthcode.core.clock import today_shanghai
from healthcode.core.documents import (
    document_types,
    generic_mask,
    make_submission,
    parse_document,
    parsed_or_raise,
    unknown_kind_error,
)
from healthcode.core.errors import HealthcodeError
from healthcode.core.models import (
    CheckResult,
    Document,
    DocumentSubmission,
    MaskedDocument,
    Problem,
)
from healthcode.core.plugins import get_plugin_manager

__all__ = ["DocumentChecker", "check_documents", "check_texts", "looks_like_mrz"]

_HookFunction = Callable[..., Any]

_plain_manager: pluggy.PluginManager | None = None


def _calls_plainly(pm: pluggy.PluginManager) -> bool:
    """Whether ``pm`` runs hooks with pluggy's own loop (no tracing or
    monitoring installed, which replace it)."""
    global _plain_manager
    if _plain_manager is None:
        _plain_manager = pluggy.PluginManager("healthcode-batch-probe")
    return getattr(pm, "_inner_hookexec", None) is getattr(_plain_manager, "_inner_hookexec", 0)


def _positional(function: _HookFunction, argnames: Sequence[str], spec: Sequence[str]) -> Any:
    """``function`` called with the hook's arguments in the spec's order."""
    order = tuple(spec.index(name) for name in argnames)
    if order == tuple(range(len(spec))):
        return function
    return lambda *args: function(*(args[i] for i in order))


def _resolve(
    caller: pluggy.HookCaller, pm: pluggy.PluginManager
) -> tuple[_HookFunction, ...] | None:
    """The implementations of ``caller``, in calling order, each taking the
    spec's arguments positionally; ``None`` when pluggy must make the calls."""
    impls = caller.get_hookimpls()
    if caller.spec is None or not _calls_plainly(pm):
        return None
    if any(impl.wrapper or impl.hookwrapper or impl.kwargnames for impl in impls):
        return None
    spec = caller.spec.argnames
    return tuple(_positional(impl.function, impl.argnames, spec) for impl in reversed(impls))


def _first_result(caller: pluggy.HookCaller, pm: pluggy.PluginManager, name: str) -> Any:
    """A one-argument ``firstresult`` hook as a plain function."""
    functions = _resolve(caller, pm)
    if functions is None:
        return lambda arg: caller(**{name: arg})

    def call(arg: object) -> object:
        for function in functions:
            result = function(arg)
            if result is not None:
                return result
        return None

    return call


def _all_results(caller: pluggy.HookCaller, pm: pluggy.PluginManager) -> Any:
    """``healthcode_validate_document`` as a plain function of (document, today)."""
    functions = _resolve(caller, pm)
    if functions is None:
        return lambda document, today: caller(document=document, today=today)

    def call(document: Document, today: dt.date) -> list[object]:
        results = []
        for function in functions:
            result = function(document, today)
            if result is not None:
                results.append(result)
        return results

    return call


class DocumentChecker:
    """``check_document`` with the hooks resolved once, for many submissions.

    ``today`` is fixed when the checker is made (``check_document`` reads the
    clock per call): a batch that runs past midnight is checked as of the day
    it started.
    """

    def __init__(
        self, pm: pluggy.PluginManager | None = None, *, today: dt.date | None = None
    ) -> None:
        self.pm = pm = pm or get_plugin_manager()
        self.today = today or today_shanghai()
        self.kinds = document_types(pm)
        hook = pm.hook
        self._parse: Callable[[DocumentSubmission], object] = _first_result(
            hook.healthcode_parse_document, pm, "submission"
        )
        self._validate: Callable[[Document, dt.date], list[Any]] = _all_results(
            hook.healthcode_validate_document, pm
        )
        # Called inline by ``check`` when pluggy need not make the calls.
        self._validators = _resolve(hook.healthcode_validate_document, pm)
        self._mask: Callable[[Document], MaskedDocument | None] = _first_result(
            hook.healthcode_mask_document, pm, "document"
        )

    def parse_hook(self, submission: DocumentSubmission) -> object:
        """``healthcode_parse_document``'s answer for ``submission`` as it
        stands (``None`` when no plugin reads it), without ``parse_document``'s
        checks and refusals: what authority imports key rows with."""
        return self._parse(submission)

    def parse(self, submission: DocumentSubmission) -> Document:
        """What ``parse_document`` returns (or raises) for ``submission``."""
        kind = submission.kind
        if kind is not None and kind not in self.kinds:
            raise unknown_kind_error(kind, self.kinds)
        if submission.image is not None and submission.mrz is None and submission.number is None:
            # Reading a photo takes a second: dispatch is no cost there.
            return parse_document(submission, self.pm)
        document = self._parse(submission)
        if type(document) is Document:
            return document
        return parsed_or_raise(document, submission, self.pm)

    def check(
        self, submission: DocumentSubmission, warnings: Sequence[Problem] = ()
    ) -> CheckResult:
        """What ``check_document`` returns (or raises) for ``submission``."""
        document = self.parse(submission)
        problems = [*warnings, *document.problems]
        if self._validators is None:
            for found in self._validate(document, self.today):
                problems.extend(found or ())
        else:
            today = self.today
            for validate in self._validators:
                found = validate(document, today)
                if found:  # pluggy drops None; an empty answer adds nothing
                    problems.extend(found)
        masked = self._mask(document)
        return CheckResult(
            document=document,
            problems=tuple(problems),
            masked=generic_mask(document) if masked is None else masked,
        )

    def check_text(self, text: str, *, kind: str | None = None) -> CheckResult:
        """A typed number or a pasted MRZ (told apart by :func:`looks_like_mrz`),
        normalised by ``make_submission`` and checked."""
        if looks_like_mrz(text):
            submission, warnings = make_submission(kind=kind, mrz=text)
        else:
            submission, warnings = make_submission(kind=kind, number=text)
        return self.check(submission, warnings)


def looks_like_mrz(text: str) -> bool:
    """Whether typed text is an MRZ rather than a document number: it holds
    ``<`` (or its full-width form), more than one line, or 30 characters or more."""
    if text.isascii() and text.isalnum():
        # A plain number (most rows of a file): one line, nothing to strip.
        return len(text) >= 30
    if "<" in text or "＜" in text or len(text.strip()) >= 30:
        return True
    return sum(1 for line in text.strip().splitlines() if line.strip()) > 1


def check_documents(
    submissions: Iterable[DocumentSubmission],
    *,
    today: dt.date | None = None,
    pm: pluggy.PluginManager | None = None,
) -> Iterator[CheckResult | HealthcodeError]:
    """Check every submission; for each, its ``CheckResult``, or the error
    ``check_document`` would raise for it (a refused row never stops the rest).
    """
    checker = DocumentChecker(pm, today=today)
    check = checker.check
    for submission in submissions:
        try:
            yield check(submission)
        except HealthcodeError as error:
            yield error


def check_texts(
    texts: Iterable[str],
    *,
    kind: str | None = None,
    today: dt.date | None = None,
    pm: pluggy.PluginManager | None = None,
) -> Iterator[CheckResult | HealthcodeError]:
    """Check typed numbers and pasted MRZs (``documents check --file``); for
    each, its ``CheckResult`` or the error the single check would raise."""
    checker = DocumentChecker(pm, today=today)
    check_text = checker.check_text
    for text in texts:
        try:
            yield check_text(text, kind=kind)
        except HealthcodeError as error:
            yield error
