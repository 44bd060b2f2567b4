"""``healthcode reviews``: the review queue (后台核验) of enrollments and renewals
refused for a face mismatch: ``list``, ``show``, ``resolve`` (confirm the
person, or block the document) and ``unblock`` (lift a block). A thin shell over
``healthcode.core.enrollment.reviews``; the same actions as ``/admin/reviews``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from healthcode.cli.options import (
    DatabaseOption,
    JsonOption,
    NowOption,
    SecretsOption,
    make_table,
    parse_now,
    print_json,
    run_async,
    shanghai_time,
    with_database,
)

if TYPE_CHECKING:
    from healthcode.core.enrollment.reviews import Review, ReviewService

app = typer.Typer(
    help="The review queue (后台核验): enrollments refused for a face mismatch.",
    no_args_is_help=True,
)

ReviewIdArgument = Annotated[int, typer.Argument(help="The entry's id (from `reviews list`).")]
ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why, in a few words; no personal data (audited).")
]


def _with_reviews(
    database: str | None,
    secrets_file: Path | None,
    action: Any,
    *,
    as_json: bool,
) -> Any:
    """``action(ReviewService)`` on the opened database; errors exit through ``fail``."""
    from healthcode.core.enrollment.reviews import ReviewService

    async def body(db: Any, _secrets: Any) -> Any:
        return await action(ReviewService(db))

    return run_async(with_database(database, secrets_file, body), as_json=as_json)


def _when(value: str | None) -> str:
    """An ISO time as a person reads it: ``2026-11-26 10:00:05 +08:00``."""
    return shanghai_time(value)


def _score(entry: dict[str, Any]) -> str:
    if entry["similarity"] is None:
        return "-"
    return f"{entry['similarity']:.3f} < {entry['threshold']:.2f}"


def _console() -> Console:
    # Never cut off what an operator types next (ids, kinds); wrap instead.
    return Console(width=max(160, Console().width))


@app.command("list")
def list_command(
    state: Annotated[
        str, typer.Option("--state", help="open (default), resolved or all.")
    ] = "open",
    limit: Annotated[int, typer.Option("--limit", help="Entries per page, 1 to 100.")] = 20,
    cursor: Annotated[
        int | None, typer.Option("--cursor", help="Show entries after this id (next page).")
    ] = None,
    now: NowOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """List entries, the oldest first: what was compared, the score, the masked
    document, when (Asia/Shanghai) and the state."""
    page = _with_reviews(
        database,
        secrets_file,
        lambda reviews: reviews.list(state=state, limit=limit, cursor=cursor),
        as_json=as_json,
    )
    at = parse_now(now)
    entries = [r.as_dict(at) for r in page.reviews]
    if as_json:
        print_json(
            {
                "ok": True,
                "reviews": entries,
                "next_cursor": page.next_cursor,
                "open_count": page.open_count,
            }
        )
        return
    rows = [
        [
            str(e["review_id"]),
            _when(e["created_at"]),
            e["state"] + (f" ({e['grant']})" if e["grant"] else ""),
            e["kind"] or "-",
            e["masked_number"] or "-",
            e["against"],
            _score(e),
            e["reason"],
        ]
        for e in entries
    ]
    table = make_table(
        ("id", "when", "state", "kind", "number", "compared with", "score", "reason"),
        rows,
        # What an operator types or reads back in full is never broken.
        whole=("id", "when", "kind", "number"),
        title=f"review queue / 后台核验 ({state}; times Asia/Shanghai)",
    )
    console = _console()
    console.print(table)
    console.print(f"open entries / 待处理: {page.open_count}")
    if page.next_cursor is not None:
        console.print(f"more: healthcode reviews list --state {state} --cursor {page.next_cursor}")


def _show_lines(entry: dict[str, Any]) -> list[tuple[str, str]]:
    lines = [
        ("id", str(entry["review_id"])),
        ("state / 状态", entry["state"]),
        ("when / 时间", _when(entry["created_at"])),
        ("attempt / 事由", entry["reason"]),
        ("compared with / 比对对象", f"{entry['against_en']} / {entry['against_zh']}"),
        ("similarity < threshold / 相似度", _score(entry)),
        ("document / 证件", f"{entry['kind'] or '-'} {entry['masked_number'] or '-'}"),
    ]
    if entry["resolution"]:
        lines += [
            ("resolved / 处理时间", _when(entry["resolved_at"])),
            ("by / 操作员", entry["resolved_by"] or "-"),
            ("reason / 理由", entry["resolution_reason"] or "-"),
        ]
    if entry["grant"]:
        lines.append(
            ("retry / 重试", f"{entry['grant']} (until {_when(entry['grant_expires_at'])})")
        )
    if entry["resolution"] == "block":
        lines.append(("documents blocked / 停用证件数", str(entry["documents_blocked"])))
    return lines


def _print_entry(entry: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(overflow="fold")
    table.add_column(overflow="fold")
    for label, value in _show_lines(entry):
        table.add_row(label, value)
    _console().print(table, highlight=False)


@app.command("show")
def show_command(
    review_id: ReviewIdArgument,
    now: NowOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one entry."""
    review: Review = _with_reviews(
        database, secrets_file, lambda reviews: reviews.get(review_id), as_json=as_json
    )
    entry = review.as_dict(parse_now(now))
    if as_json:
        print_json({"ok": True, **entry})
        return
    _print_entry(entry)


@app.command("resolve")
def resolve_command(
    review_id: ReviewIdArgument,
    decision: Annotated[
        str,
        typer.Argument(
            help="confirm (it is the same person: that face may retry once within 72 "
            "hours) or block (block the document)."
        ),
    ],
    reason: ReasonOption,
    operator: Annotated[
        str, typer.Option("--operator", help="Who resolves it (a name or a desk), for the audit.")
    ] = "cli",
    now: NowOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resolve an entry once (audited); a resolved entry is never changed."""
    at = parse_now(now)

    def resolve(reviews: ReviewService) -> Any:
        return reviews.resolve(review_id, decision, reason, operator=operator, now=at)

    review: Review = _with_reviews(database, secrets_file, resolve, as_json=as_json)
    entry = review.as_dict(at)
    if as_json:
        print_json({"ok": True, **entry})
        return
    if decision == "confirm":
        done = (
            f"review {review_id} confirmed: the same face may enroll again once, until "
            f"{_when(entry['grant_expires_at'])} / "
            "已确认本人，可在期限内重新登记一次"
        )
    else:
        done = (
            f"review {review_id} blocked: {entry['documents_blocked']} document(s) blocked "
            "/ 已停用证件"
        )
    _console().print(done, highlight=False, markup=False)


@app.command("unblock")
def unblock_command(
    review_id: ReviewIdArgument,
    reason: ReasonOption,
    operator: Annotated[
        str, typer.Option("--operator", help="Who lifts it (a name or a desk), for the audit.")
    ] = "cli",
    now: NowOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lift a block: the documents the entry blocked may enroll and renew again (audited)."""
    at = parse_now(now)

    def unblock(reviews: ReviewService) -> Any:
        return reviews.unblock(review_id, reason, operator=operator, now=at)

    review: Review = _with_reviews(database, secrets_file, unblock, as_json=as_json)
    if as_json:
        print_json({"ok": True, **review.as_dict(at)})
        return
    _console().print(
        f"review {review_id} unblocked: its documents may enroll again / 已解除停用",
        highlight=False,
        markup=False,
    )
