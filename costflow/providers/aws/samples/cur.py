"""Deterministic, realistic AWS legacy Cost and Usage Report (CUR) exports of any size.

Why: the only real CUR we may ship is a 1,281-row anonymized sample. Testing an ingest for exact
money, every line item type, Savings Plan and Reserved Instance amortization, tag quoting and
speed at millions of rows needs more, and needs an independent truth to compare against. This
module writes CUR files that look like the real one (same 94 columns in the same order, plus
resource ids, reservation and Savings Plan columns, ``product/instanceType`` and
``resourceTags/...`` columns; the same Java-style number text such as ``1.443347E-4``; minimal CSV
quoting) and returns, beside each file, the exact ``lineItem/UnblendedCost`` total as a
`~decimal.Decimal` and the row count per ``lineItem/LineItemType``.

The same arguments always give byte-identical files. Rows are generated in numpy/pyarrow chunks
and streamed to disk (gzip in a background thread), so millions of rows take seconds and memory
stays flat.

Usage::

    python -m costflow.providers.aws.samples.cur --rows 2000000 --out /tmp/cur.csv.gz --seed 7

    from costflow.providers.aws.samples.cur import generate_cur
    info = generate_cur("cur.csv.gz", 20_000)   # info.unblended_total, info.line_item_types

`write_cur_delivery` lays several months out as AWS delivers a legacy report to S3
(``<report>/<yyyymmdd-yyyymmdd>/<report>-<n>.csv.gz`` plus ``<report>-Manifest.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

import numpy as np

from costflow.providers.aws.samples.cur_catalog import CUR_COLUMNS, Catalog, build_catalog
from costflow.providers.aws.samples.cur_month_end import month_end_blocks
from costflow.providers.aws.samples.cur_rows import LINE_ITEM_TYPES, Block, MonthRows
from costflow.providers.aws.samples.cur_world import build_world, plan_month, stable_hex
from costflow.samples.csv_text import TextSink, csv_escape, line_bytes

__all__ = ["CUR_COLUMNS", "LINE_ITEM_TYPES", "GeneratedCur", "generate_cur",
           "write_cur_delivery"]


@dataclass(frozen=True)
class GeneratedCur:
    """One written CUR file and the truth about it.

    Attributes:
        path: the file.
        rows: data rows (header excluded).
        unblended_total: exact sum of the ``lineItem/UnblendedCost`` text written.
        line_item_types: rows per ``lineItem/LineItemType`` (types with no row are left out).
        month: billing period, ``YYYY-MM``.
    """

    path: Path
    rows: int
    unblended_total: Decimal
    line_item_types: dict[str, int] = field(default_factory=dict)
    month: str = ""


@cache
def _catalog() -> Catalog:
    return build_catalog()


def _exact_sum(units: np.ndarray) -> int:
    """Sum of int64 values without overflow (split in high and low parts)."""
    high, low = np.divmod(units, 10**9)
    return int(high.sum()) * 10**9 + int(low.sum())


def _month_blocks(world_args: dict, *, month: str, rows: int, final: bool, first: bool,
                  currency: str, covered_days: int | None, chunk_rows: int) -> Iterator[Block]:
    catalog = _catalog()
    world = build_world(catalog, **world_args)
    plan = plan_month(world, seed=world_args["seed"], month=month, rows=rows, final=final,
                      first=first, currency=currency, covered_days=covered_days)
    gen = MonthRows(catalog, world, plan, chunk_rows=chunk_rows)
    yield from gen.hourly_blocks()
    yield from month_end_blocks(gen)


def _write_files(blocks: Iterable[Block], targets: Sequence[tuple[Path, int]], *, gzip: bool,
                 level: int, month: str) -> list[GeneratedCur]:
    """Stream ``blocks`` into ``targets`` (path, rows), each file with the header."""
    header = (",".join(csv_escape(c) for c in CUR_COLUMNS) + "\n").encode()
    stream = iter(blocks)
    pending: Block | None = None
    written = []
    for path, budget in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        sink = TextSink(path, gzip=gzip, level=level)
        total, counts, left = 0, np.zeros(len(LINE_ITEM_TYPES), np.int64), budget
        try:
            sink.write(header)
            while left > 0:
                block = pending if pending is not None else next(stream)
                take = min(left, len(block.lines))
                part, pending = block, None
                if take < len(block.lines):
                    part = Block(block.lines.slice(0, take), block.cost[:take],
                                 block.types[:take])
                    pending = Block(block.lines.slice(take), block.cost[take:],
                                    block.types[take:])
                sink.write(line_bytes(part.lines))
                total += _exact_sum(part.cost)
                counts += np.bincount(part.types, minlength=len(LINE_ITEM_TYPES))
                left -= take
        finally:
            sink.close()
        written.append(GeneratedCur(
            path, budget, Decimal(total).scaleb(-12),
            {name: int(n) for name, n in zip(LINE_ITEM_TYPES, counts, strict=True) if n},
            month))
    if pending is not None or next(stream, None) is not None:
        raise AssertionError("generator produced more rows than planned")  # a bug, not input
    return written


def _world_args(seed: int, payer_account: str, linked_accounts: int, first_month: str) -> dict:
    if not (payer_account.isdigit() and len(payer_account) == 12):
        raise ValueError(f"payer_account must be a 12-digit AWS account id, got {payer_account!r}")
    if linked_accounts < 1:
        raise ValueError("linked_accounts must be at least 1")
    anchor = datetime.strptime(first_month, "%Y-%m")
    return {"seed": seed, "payer": payer_account, "linked_accounts": linked_accounts,
            "anchor": anchor.replace(tzinfo=UTC)}


def generate_cur(path: str | Path, rows: int, *, seed: int = 7, month: str = "2023-11",
                 payer_account: str = "123412340534", linked_accounts: int = 4,
                 currency: str = "USD", gzip: bool | None = None, final: bool = False,
                 chunk_rows: int = 50_000, compresslevel: int = 6) -> GeneratedCur:
    """Write one month of a legacy CUR to ``path``.

    Args:
        path: output file; ``.gz`` suffix means gzip unless ``gzip`` says otherwise.
        rows: exact number of data rows (at least the month-end rows, ~60 with defaults).
        seed: random seed; same arguments give byte-identical files.
        month: billing period ``YYYY-MM``.
        payer_account: 12-digit payer (management) account id.
        linked_accounts: member accounts besides the payer.
        currency: ``lineItem/CurrencyCode`` (amounts are not converted).
        gzip: compress; ``None`` decides from the suffix.
        final: the month is invoiced (``bill/InvoiceId`` set); the real sample's is not.
        chunk_rows: rows generated per vectorized chunk (memory vs. overhead).
        compresslevel: gzip level (AWS's files are level-6-like).

    Returns:
        The file's `GeneratedCur` truth.
    """
    path = Path(path)
    gz = path.suffix == ".gz" if gzip is None else gzip
    blocks = _month_blocks(_world_args(seed, payer_account, linked_accounts, month), month=month,
                           rows=rows, final=final, first=True, currency=currency,
                           covered_days=None, chunk_rows=chunk_rows)
    return _write_files(blocks, [(path, rows)], gzip=gz, level=compresslevel, month=month)[0]


def write_cur_delivery(out_dir: str | Path, rows: int,
                       months: Sequence[str] = ("2023-10", "2023-11"), files_per_month: int = 2,
                       *, report: str = "costflow-cur", seed: int = 7,
                       payer_account: str = "123412340534", linked_accounts: int = 4,
                       currency: str = "USD", open_month_days: int | None = 20,
                       chunk_rows: int = 50_000) -> list[GeneratedCur]:
    """Write several months as AWS delivers a legacy CUR (OVERWRITE_REPORT versioning).

    Layout: ``out_dir/<report>/<yyyymmdd-yyyymmdd>/<report>-<n>.csv.gz`` (n from 1) and
    ``<report>-Manifest.json`` beside them, listing the files in ``reportKeys``. Every month but
    the last is final (``bill/InvoiceId`` set); the last is month-to-date, with usage in its first
    ``open_month_days`` days (``None``: the whole month). Accounts, resources and commitments are
    the same in every month.

    Args:
        out_dir: root directory (the bucket).
        rows: data rows per month, split evenly over its files.
        months: billing periods ``YYYY-MM``, oldest first.
        files_per_month: data files per month.
        report: report name.
        seed, payer_account, linked_accounts, currency: as in `generate_cur`.
        open_month_days: days of usage in the last (open) month.
        chunk_rows: rows per vectorized chunk.

    Returns:
        One `GeneratedCur` per data file, in delivery order.
    """
    out = Path(out_dir)
    world_args = _world_args(seed, payer_account, linked_accounts, months[0])
    written: list[GeneratedCur] = []
    for i, month in enumerate(months):
        final = i < len(months) - 1
        start = datetime.strptime(month, "%Y-%m")
        end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
        period = f"{start:%Y%m%d}-{end:%Y%m%d}"
        sizes = [rows // files_per_month + (j < rows % files_per_month)
                 for j in range(files_per_month)]
        targets = [(out / report / period / f"{report}-{j + 1}.csv.gz", n)
                   for j, n in enumerate(sizes)]
        blocks = _month_blocks(world_args, month=month, rows=rows, final=final, first=i == 0,
                               currency=currency, covered_days=None if final else open_month_days,
                               chunk_rows=chunk_rows)
        files = _write_files(blocks, targets, gzip=True, level=6, month=month)
        _write_manifest(out, report, payer_account, seed, start, end, files)
        written.extend(files)
    return written


def _write_manifest(out: Path, report: str, payer: str, seed: int, start: datetime,
                    end: datetime, files: list[GeneratedCur]) -> None:
    def column_type(name: str) -> str:
        if name.endswith(("Date", "Time", "TimeInterval")):
            return "DateTime"
        money = ("Cost", "Rate", "Amount", "Fee", "Value", "Commitment", "Quantity", "Units")
        return "OptionalBigDecimal" if name.endswith(money) else "OptionalString"

    period = f"{start:%Y%m%d}-{end:%Y%m%d}"
    manifest = {
        "assemblyId": stable_hex(seed, report, period, size=16),
        "account": payer,
        "columns": [{"category": c.split("/")[0], "name": c.split("/", 1)[1],
                     "type": column_type(c)} for c in CUR_COLUMNS],
        "charset": "UTF-8", "compression": "GZIP", "contentType": "text/csv",
        "reportId": stable_hex(seed, report, size=32), "reportName": report,
        "billingPeriod": {"start": f"{start:%Y%m%d}T000000.000Z",
                          "end": f"{end:%Y%m%d}T000000.000Z"},
        "bucket": "costflow-demo-cur",
        "reportKeys": [f.path.relative_to(out).as_posix() for f in files],
    }
    path = out / report / period / f"{report}-Manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write one CUR file and print its truth as JSON."""
    parser = argparse.ArgumentParser(prog="python -m costflow.providers.aws.samples.cur",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, required=True, help="data rows to write")
    parser.add_argument("--out", required=True, help="output path (.csv or .csv.gz)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--month", default="2023-11", help="billing period YYYY-MM")
    parser.add_argument("--final", action="store_true", help="set bill/InvoiceId")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        info = generate_cur(args.out, args.rows, seed=args.seed, month=args.month,
                            final=args.final)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    print(json.dumps({"path": str(info.path), "rows": info.rows, "month": info.month,
                      "unblended_total": str(info.unblended_total),
                      "line_item_types": info.line_item_types, "seconds": round(seconds, 2),
                      "rows_per_second": round(info.rows / seconds)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
