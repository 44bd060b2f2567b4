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
        "test_load_shedder_answers_503_past_its_bound",
        "test_malformed_requests_are_400_problems",
        "test_openapi_document_lists_problem_responses",
        "test_options_lists_every_method_of_a_path",
        "test_rate_limit_answers_429_with_retry_after",
        "test_unreadable_input_is_a_coded_problem",
        "test_wrong_check_digit_is_a_200_with_problems",
    },
    "test_status_import_pg.py": {
        "test_a_failed_import_leaves_the_previous_list_and_no_table_behind",
        "test_a_list_naming_a_person_twice_keeps_the_most_severe",
        "test_a_reader_sees_the_previous_list_until_the_swap_commits",
        "test_import_swaps_in_a_partition_per_day_and_source",
        "test_merging_into_a_swapped_in_list",
        "test_migration_0007_partitions_a_populated_database_and_reverts",
        "test_the_purge_drops_past_days_partitions",
        "test_the_swap_steps_back_while_a_reader_holds_the_day",
        "test_two_sources_import_a_new_day_at_once",
    },
    "test_status_import_fast.py": {
        "test_the_resident_id_batch_check_equals_the_parse",
        "test_csv_lines_are_read_as_the_csv_module_reads_them",
        "test_the_prepared_hmac_equals_document_key",
    },
    "test_peer_status_partitions.py": {
        "test_a_list_lands_in_its_days_partition_and_replaces_only_its_peers",
        "test_a_subjects_entry_is_read_back_from_the_partition",
        "test_a_failed_write_keeps_the_previous_list",
        "test_rows_of_a_day_without_a_partition_move_into_it",
        "test_two_peers_writing_a_new_day_at_once",
        "test_partitions_are_made_only_for_the_tables_asked",
        "test_the_purge_drops_past_days_partitions_of_the_peers_lists",
        "test_migration_0008_partitions_a_populated_database_and_reverts",
    },
    "test_status_lookup_cache.py": {
        "test_a_cached_decision_never_outlives_its_day",
        "test_a_document_linked_later_is_seen_by_the_next_lookup",
        "test_an_import_at_one_worker_is_seen_by_the_other_at_once",
        "test_an_import_is_seen_by_the_next_lookup",
        "test_repeated_lookups_ask_the_status_sources_once",
    },
    "test_documents_batch.py": {
        "test_batch_equals_check_document_row_by_row",
        "test_check_texts_equals_the_single_check_of_each_text",
        "test_every_builtin_kind_is_generated_and_checked",
    },
    "test_ocr_hard_photos.py": {
        "test_hard_photos_keep_their_portrait_box_inside_the_photo",
    },
    "test_redis_state.py": {
        "test_the_assisted_check_limit_counts_across_nodes",
        "test_a_live_code_verified_at_one_node_is_refused_at_another",
        "test_a_pass_revocation_is_pushed_to_every_node",
        "test_a_signed_request_counts_once_across_nodes",
        "test_a_token_revoked_at_one_node_is_refused_at_another_at_once",
        "test_redis_down_refuses_what_counts_once_and_recovers",
        "test_shared_state_use_once_and_outage",
        "test_the_address_rate_limit_counts_across_nodes",
        "test_the_guard_token_limit_counts_across_nodes",
    },
    "test_api_flows.py": {
        "test_tokens_cli_create_list_revoke",
    },
    "test_cli_documents.py": {
        "test_usage_errors_exit_2",
        "test_valid_resident_id_exits_0_with_masked_output",
    },
    "test_cli_friction_admin.py": {
        "test_database_url_is_a_hidden_alias",
        "test_export_status_works_once_a_pair_key_is_made",
        "test_help_paragraphs_are_not_broken_mid_sentence",
        "test_import_and_export_days_default_to_today_in_shanghai",
        "test_import_is_quiet_off_a_terminal",
        "test_status_show_gives_its_time_in_shanghai",
        "test_tokens_list_shows_whole_ids_and_shanghai_times",
        "test_tokens_revoke_never_prints_the_secret_and_says_what_it_revoked",
    },
    "test_cli_holder_friction.py": {
        "test_an_unreachable_server_is_named",
        "test_assist_check_explains_a_refused_number",
        "test_present_watch_prints_a_renewed_terminal_qr",
        "test_the_key_file_device_key_writes_is_what_enroll_submit_takes",
    },
    "test_conformance_builtin.py": {
        "test_fpr_card",
        "test_hkmo_permit",
        "test_id_card",
        "test_passport",
        "test_status_sources",
    },
    "test_core_clock_checkdigits.py": {
        "test_gb11643_fast_form_equals_the_weighted_sum",
    },
    "test_core_privacy.py": {
        "test_mask_number_shows_at_most_four_characters",
    },
    "test_core_text.py": {
        "test_normalise_number_never_fails_unexpectedly",
        "test_normalising_a_clean_number_is_the_identity",
    },
    "test_demo.py": {
        "test_a_demo_instance_says_so_and_draws_actions_stills_can_show",
    },
    "test_doctor.py": {
        "test_a_clock_before_the_newest_stored_time_fails",
        "test_database_behind_the_migrations",
        "test_secrets_missing_or_of_another_database",
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
        "test_arbitrary_bytes_give_an_image_or_an_image_error",
        "test_damaged_png_gives_an_image_or_an_image_error",
        "test_fifty_megapixel_jpeg_is_decoded_reduced",
    },
    "test_face_liveness.py": {
        "test_frames_answer_their_challenge_and_no_other",
    },
    "test_face_models.py": {
        # Run a stand-in pip in a subprocess (inside the code under test).
        "test_fetch_models_downloads_once_then_reuses",
        "test_fetch_reports_a_failing_pip",
    },
    "test_fpr_card.py": {
        "test_any_18_digits_beginning_with_9_are_this_card",
        "test_any_one_digit_mistyped_is_caught",
        "test_any_two_neighbours_swapped_are_caught",
        "test_digit_strings_beginning_with_9_of_a_wrong_length_name_this_card",
        "test_numbers_built_by_the_rules_are_valid",
    },
    "test_hardening_auth.py": {
        "test_a_live_code_is_accepted_once_on_any_worker",
        "test_a_signed_request_is_accepted_once",
        "test_a_timestamp_beyond_the_year_9999_is_stale_not_a_crash",
        "test_a_token_revoked_by_this_process_is_refused_at_once",
        "test_a_token_revoked_from_the_cli_is_refused_within_a_second",
        "test_offline_verify_accepts_a_live_code_once_per_device",
        "test_offline_verify_says_when_revocations_were_not_checked",
        "test_racing_workers_accept_a_live_code_exactly_once",
        "test_the_signature_covers_the_query_string",
    },
    "test_hardening_input.py": {
        "test_an_existing_readable_database_is_made_private",
        "test_api_import_day_rule_and_explicit_any_day",
        "test_api_import_while_one_runs_is_409",
        "test_api_purge_is_the_same_purge",
        "test_cli_import_day_rule_and_any_day",
        "test_cli_purge_deletes_expired_passes_and_revocations",
        "test_concurrent_imports_of_one_list_never_lose_one_silently",
        "test_deeply_nested_json_is_a_400_problem",
        "test_imports_of_other_sources_or_days_run_side_by_side",
        "test_jsonl_rows_past_the_parser_are_reported_by_line",
        "test_jsonl_rows_past_the_parser_are_reported_through_the_api",
        "test_sqlite_database_wal_and_directories_are_private",
    },
    "test_hkmo_permit.py": {
        "test_residence_permit_single_substitution_always_detected",
        "test_single_change_in_a_covered_field_is_detected",
    },
    "test_id_card.py": {
        "test_any_adjacent_transposition_in_the_body_is_detected",
        "test_any_change_of_the_check_character_is_detected",
        "test_any_single_substitution_in_the_body_is_detected",
        "test_fast_verdict_agrees_with_parse_and_validate",
        "test_generated_legacy_numbers_round_trip",
        "test_generated_numbers_round_trip",
        "test_transposition_ten_apart_is_not_detected",
    },
    "test_image_flood.py": {
        "test_a_frame_over_the_pixel_cap_is_refused_from_its_header",
        "test_a_large_jpeg_counts_at_the_scale_it_is_decoded_at",
        "test_a_used_challenge_is_refused_before_any_decode",
        "test_a_worker_holds_decoded_images_for_a_bounded_number_of_requests",
        "test_decoding_runs_off_the_event_loop_while_health_answers",
        "test_frames_over_the_request_pixel_budget_are_refused_before_any_decode",
        "test_holder_answers_are_held_to_the_challenge_and_the_pixel_caps",
        "test_holder_floods_with_a_made_up_nonce_decode_nothing",
        "test_more_frames_than_the_challenge_allows_are_refused_before_any_decode",
        "test_the_reported_flood_with_a_made_up_nonce_decodes_nothing",
    },
    "test_liveness_actions_setting.py": {
        "test_challenges_are_drawn_from_the_allowed_actions_only",
    },
    "test_logging.py": {
        "test_the_app_leaves_logging_alone_and_readiness_checks_are_quiet",
    },
    "test_metrics.py": {
        "test_each_app_counts_on_its_own",
        "test_enrollments_by_result_and_liveness_failures_by_reason",
        "test_face_work_in_flight_is_seen_while_it_runs",
        "test_metrics_are_for_admins_only",
        "test_rate_limit_and_overload_refusals_are_counted",
        "test_status_imports_count_rows_and_duration",
        "test_verifications_by_result_and_code_with_their_latency",
    },
    "test_ocr.py": {
        "test_a_date_digit_read_as_its_look_alike_is_restored",
        "test_a_decompression_bomb_is_refused_before_decoding",
        "test_moderately_degraded_photos_are_read_by_templates",
        "test_turned_photos_are_read_by_templates",
    },
    "test_pass_service.py": {
        "test_online_verification_refuses_own_revocations_and_a_second_showing",
        "test_revocations_reach_another_worker",
    },
    "test_passes_cli.py": {
        "test_two_regions_through_the_cli",
    },
    "test_passes_fuzz.py": {
        "test_hypothesis_cbor_shapes",
        "test_hypothesis_fuzz",
        "test_mutation_fuzz",
    },
    "test_passport_properties.py": {
        "test_any_mrz_text_parses_or_is_malformed",
        "test_every_single_change_in_the_specimens",
        "test_fast_check_digit_equals_core",
        "test_fitting_shapes_always_parse",
        "test_generated_mrzs_round_trip",
        "test_many_generated_mrzs_round_trip",
        "test_single_change_is_caught_when_731_can_catch_it",
    },
    "test_plugin_kit.py": {
        "test_a_broken_hook_fails_the_generated_tests_naming_the_rule",
        "test_a_silent_status_source_conforms",
        "test_generated_tests_pass_as_written",
    },
    "test_reviews.py": {
        "test_a_blocked_document_is_refused_before_any_face_work",
        "test_an_entry_is_resolved_once_and_audited",
        "test_an_entry_shows_what_was_compared_and_the_masked_document_only",
        "test_api_lists_shows_and_resolves_entries",
        "test_api_refusals_are_coded_problems",
        "test_bad_review_input_is_refused_with_its_code",
        "test_blocking_a_renewal_entry_blocks_every_document_of_the_subject",
        "test_cli_lists_shows_and_resolves",
        "test_entries_page_by_cursor_and_filter_by_state",
    },
    "test_rollover.py": {
        "test_24_00_is_logged_once_with_counts_by_one_of_several_workers",
        "test_a_start_after_a_missed_24_00_catches_up_and_says_so",
        "test_each_day_is_claimed_once",
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
        "test_a_broken_source_is_a_plugin_error",
        "test_bad_files_and_sources_are_refused",
        "test_cli_import_show_purge",
        "test_cutoff_boundaries_in_shanghai",
        "test_duplicate_rows_keep_the_most_severe",
        "test_import_then_resolve",
        "test_interrupted_import_leaves_previous_data",
        "test_invalid_rows_are_reported_by_line_and_valid_rows_imported",
        "test_json_lines_with_chinese_labels_and_legacy_numbers",
        "test_jsonl_invalid_lines",
        "test_linked_documents_share_a_status",
        "test_no_raw_number_anywhere_in_tables_or_logs",
        "test_plugins_and_imported_lists_combine",
        "test_reimport_changes_nothing",
        "test_status_show_follows_the_clock_across_midnight",
        "test_two_sources_disagree_most_severe_wins_and_both_are_recorded",
    },
    "test_status_source_plugin.py": {
        "test_an_outside_source_sees_what_the_built_ins_see",
    },
    "test_storage.py": {
        "test_datetimes_come_back_aware_utc",
        "test_init_is_idempotent_and_binds_the_secrets",
        "test_migrations_create_exactly_the_declared_schema",
        "test_the_database_itself_limits_dependants_to_four",
        "test_the_schema_check_is_quiet_and_knows_the_revision",
    },
    "test_synthetic_documents.py": {
        "test_generation_is_reproducible",
        "test_photos_decode_and_hold_the_portrait",
        "test_other_mrz_fonts_are_scaled_to_the_icao_pitch",
        "test_special_pages",
        "test_the_hard_set_is_reproducible_and_cycles_its_hardships",
    },
    "test_web_compression.py": {
        "test_a_small_file_is_sent_as_it_is",
        "test_first_loads_of_the_holder_and_guard_pages_fit_the_budget",
        "test_pages_scripts_and_styles_are_sent_gzipped",
    },
    "test_web_pages.py": {
        "test_english_is_chosen_only_when_preferred_over_chinese",
        "test_missing_static_file_is_a_404",
        "test_openapi_declares_its_security_schemes",
        "test_pages_are_html_with_a_self_only_csp",
        "test_root_is_no_longer_a_json_404",
        "test_schema_page_loads_its_renderer_from_this_service",
        "test_static_files_have_their_types_and_the_csp",
        "test_the_service_worker_is_served_from_the_root",
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
    if item.get_closest_marker("multinode"):
        found.add("multinode")  # several service processes, PostgreSQL and Redis: always slow
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
