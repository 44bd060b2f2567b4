"""The test tiers: which markers each test gets when it is collected.

``face`` (runs the face models), ``ocr`` (runs tesseract), ``postgres`` (the
PostgreSQL case of a backend-parametrised test), ``browser`` (tests/browser:
real Chromium) and ``slow``: all of those,
plus tests that start a live server or a subprocess, plus those measured
slower than about 0.1 s (``MEASURED_SLOW``). ``pytest -m "not slow"`` is the
fast tier.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator

import pytest

MEASURED_SLOW: dict[str, set[str]] = {
    "test_api.py": {
        "test_body_size_is_capped",
        "test_check_a_resident_id",
        "test_check_an_mrz_reports_expiry_without_failing",
        "test_database_unavailable_is_503_with_retry_after",
        "test_health_and_readiness",
        "test_malformed_requests_are_400_problems",
        "test_openapi_document_lists_problem_responses",
        "test_rate_limit_answers_429_with_retry_after",
        "test_unreadable_input_is_a_coded_problem",
        "test_wrong_check_digit_is_a_200_with_problems",
    },
    "test_api_flows.py": {
        "test_tokens_cli_create_list_revoke",
    },
    "test_enrollment.py": {
        "test_assisted_check_for_children_and_elders_stores_nothing",
        "test_bad_documents_are_refused_with_their_reason",
        "test_typed_names_that_do_not_agree",
    },
    "test_enrollment_cli.py": {
        "test_cli_refusals",
    },
    "test_face_images.py": {
        "test_fifty_megapixel_jpeg_is_decoded_reduced",
    },
    "test_face_models.py": {
        # Run a stand-in pip in a subprocess (inside the code under test).
        "test_fetch_models_downloads_once_then_reuses",
        "test_fetch_reports_a_failing_pip",
    },
    "test_hardening_auth.py": {
        "test_a_live_code_is_accepted_once_on_any_worker",
        "test_a_signed_request_is_accepted_once",
        "test_a_timestamp_beyond_the_year_9999_is_stale_not_a_crash",
        "test_a_token_revoked_by_this_process_is_refused_at_once",
        "test_a_token_revoked_from_the_cli_is_refused_within_a_second",
        "test_offline_verify_accepts_a_live_code_once_per_device",
        "test_offline_verify_says_when_revocations_were_not_checked",
        "test_the_signature_covers_the_query_string",
    },
    "test_hardening_input.py": {
        "test_an_existing_readable_database_is_made_private",
        "test_api_import_day_rule_and_explicit_any_day",
        "test_api_import_while_one_runs_is_409",
        "test_api_purge_is_the_same_purge",
        "test_cli_import_day_rule_and_any_day",
        "test_concurrent_imports_of_one_list_never_lose_one_silently",
        "test_deeply_nested_json_is_a_400_problem",
        "test_imports_of_other_sources_or_days_run_side_by_side",
        "test_jsonl_rows_past_the_parser_are_reported_by_line",
        "test_jsonl_rows_past_the_parser_are_reported_through_the_api",
        "test_sqlite_database_wal_and_directories_are_private",
    },
    "test_hkmo_permit.py": {
        "test_single_change_in_a_covered_field_is_detected",
    },
    "test_id_card.py": {
        "test_fast_verdict_agrees_with_parse_and_validate",
    },
    "test_image_flood.py": {
        "test_a_frame_over_the_pixel_cap_is_refused_from_its_header",
        "test_a_used_challenge_is_refused_before_any_decode",
        "test_a_worker_holds_decoded_images_for_a_bounded_number_of_requests",
        "test_decoding_runs_off_the_event_loop_while_health_answers",
        "test_frames_over_the_request_pixel_budget_are_refused_before_any_decode",
        "test_holder_answers_are_held_to_the_challenge_and_the_pixel_caps",
        "test_holder_floods_with_a_made_up_nonce_decode_nothing",
        "test_more_frames_than_the_challenge_allows_are_refused_before_any_decode",
        "test_the_reported_flood_with_a_made_up_nonce_decodes_nothing",
    },
    "test_ocr.py": {
        "test_a_decompression_bomb_is_refused_before_decoding",
        "test_moderately_degraded_photos_are_read_by_templates",
        "test_turned_photos_are_read_by_templates",
    },
    "test_passes_cli.py": {
        "test_two_regions_through_the_cli",
    },
    "test_passes_fuzz.py": {
        "test_hypothesis_cbor_shapes",
        "test_hypothesis_fuzz",
        "test_mutation_fuzz",
    },
    "test_sharing.py": {
        "test_a_peer_list_makes_an_enrolled_person_red_without_any_number_stored",
        "test_cli_export_and_import",
        "test_enrolled_before_the_pair_key_needs_a_new_enrollment",
        "test_hashes_are_per_day_and_per_pair",
        "test_refused_lists_change_nothing",
        "test_shared_rows_end_with_their_day",
    },
    "test_status.py": {
        "test_cli_import_show_purge",
        "test_cutoff_boundaries_in_shanghai",
        "test_import_then_resolve",
        "test_interrupted_import_leaves_previous_data",
        "test_no_raw_number_anywhere_in_tables_or_logs",
        "test_reimport_changes_nothing",
        "test_status_show_follows_the_clock_across_midnight",
    },
    "test_storage.py": {
        "test_migrations_create_exactly_the_declared_schema",
    },
    "test_synthetic_documents.py": {
        "test_generation_is_reproducible",
        "test_photos_decode_and_hold_the_portrait",
        "test_special_pages",
    },
}
"""Test functions (every parameter) that took about 0.1 s or more in
``CI=true pytest --durations=0`` and that no rule in ``_tiers`` catches,
by module. Measure again and update when a test moves between tiers."""


@functools.cache
def _source(func: Callable[..., object]) -> str:
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        return ""


def _sources(item: pytest.Function) -> Iterator[str]:
    """The test function's source and that of every fixture it uses."""
    yield _source(item.function)
    for defs in item._fixtureinfo.name2fixturedefs.values():
        for fixture in defs:
            yield _source(fixture.func)


def tiers(item: pytest.Function) -> set[str]:
    """The markers ``item`` gets (see ``conftest.pytest_collection_modifyitems``)."""
    found: set[str] = set()
    params = getattr(item, "callspec", None)
    if params is not None and "postgresql" in params.params.values():
        found.add("postgres")
    sources = list(_sources(item))
    if any("require_face_models" in source for source in sources):
        found.add("face")
    skip_reasons = " ".join(
        str(mark.kwargs.get("reason", "")) for mark in item.iter_markers("skipif")
    )
    if "tesseract" in skip_reasons or any('which("tesseract")' in s for s in sources):
        found.add("ocr")
    if item.get_closest_marker("browser") or item.path.parent.name == "browser":
        found.add("browser")  # real Chromium (tests/browser): always slow
    slow = (
        "live_server" in item.fixturenames
        or any("subprocess" in source for source in sources)
        or item.originalname in MEASURED_SLOW.get(item.path.name, ())
    )
    if found or slow:
        found.add("slow")
    return found
