"""A fast, deterministic GCP detailed billing export of any size, and its exact truth.

Why this module exists: `costflow.providers.gcp.samples.billing.generate_rows` builds one Python
dict per row, fine for a demo, far too slow for a multi-million-row benchmark. This module draws
the rows of a realistic ``gcp_billing_export_resource_v1_*`` table vectorized (numpy for the
choices and amounts, Arrow for the nested values, picked from the catalogs of
`costflow.providers.gcp.samples.world`) and writes them as BigQuery's extracts do: nested
Parquet (the field types of `costflow.providers.gcp.samples.billing.TYPED_SCHEMA`) or newline-
delimited JSON, gzip (``.json.gz``: timestamps ``YYYY-MM-DD HH:MM:SS[.ffffff] UTC``, NUMERIC as
strings, FLOAT64 as JSON numbers; text built column-wise with Arrow string joins,
`costflow.providers.gcp.samples.arrow_json`).

What the rows hold, for one invoice month and two billing accounts (USD and EUR):

* usage of Compute Engine, GKE, BigQuery, Cloud Storage, Cloud SQL, Networking, Logging and a
  Marketplace (reseller) product, with project/resource labels, system labels and tags;
* 0-3 credits per row (sustained use, spending-based discount, free tier, promotion, resource
  CUD, flex-CUD fee offset), amounts negative;
* every ``cost_type``: tax, adjustments (corrections of the previous month with
  ``adjustment_info``, goodwill and SLA credits of this month) and rounding errors;
* late rows: usage on the month's last day invoiced on the next month, exported days later;
* a resource-based committed use discount: per region a daily ``Commitment v1: Cpu in Americas
  for 1 Year`` (and Ram) fee row with ``subscription.instance_id``, and usage in that region
  covered, fully or partly, by ``COMMITTED_USAGE_DISCOUNT`` credits of the same commitment.

Money is generated as integer micros, so each cost and credit is a FLOAT64 whose shortest text is
the exact decimal (at most 6 decimals); the truth, ``SUM(cost) + SUM(credits.amount)`` per
(billing_account_id, invoice.month) [../shared/reference/provider_formats.md §1.4], is summed
with Arrow decimal128 aggregation. The same arguments always give the same rows.

    python -m costflow.providers.gcp.samples.bulk --rows 1000000 --out export.parquet
    info = write_parquet("export.parquet", 100_000)   # info.truth[(account, "202610")]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from costflow.providers.gcp.samples.arrow_json import JsonRenderer, Pick, Record, Repeated, to_arrow
from costflow.providers.gcp.samples.billing import TYPED_SCHEMA
from costflow.providers.gcp.samples.rows import Plan, fixed_plan, random_plan
from costflow.providers.gcp.samples.world import CUD_FEES, World, build_world
from costflow.samples.csv_text import TextSink, line_bytes

__all__ = ["BulkExport", "Chunk", "generate", "write_jsonl", "write_parquet"]


@dataclass(frozen=True)
class Chunk:
    """One generated block of rows: its columns as nodes, and what it adds to the truth."""

    nodes: dict[str, pa.Array | Pick | Record | Repeated]
    rows: int
    truth: dict[tuple[str, str], Decimal]
    stats: dict[str, int]

    def record_batch(self) -> pa.RecordBatch:
        """The rows as BigQuery's Parquet/Arrow extract types them."""
        return pa.RecordBatch.from_arrays([to_arrow(self.nodes[f.name]) for f in TYPED_SCHEMA],
                                          schema=TYPED_SCHEMA)


@dataclass
class BulkExport:
    """A written export file and the truth about it.

    Attributes:
        path: the file.
        rows: rows written.
        truth: exact ``SUM(cost) + SUM(credits.amount)`` per (billing_account_id,
            invoice.month).
        stats: row counts: per cost_type, late, multi-credit, CUD fee and CUD-covered rows.
        seconds: generation and writing time.
    """

    path: Path
    rows: int
    truth: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, chunk: Chunk) -> None:
        self.rows += chunk.rows
        for key, amount in chunk.truth.items():
            self.truth[key] = self.truth.get(key, Decimal(0)) + amount
        for name, n in chunk.stats.items():
            self.stats[name] = self.stats.get(name, 0) + n


def _decimal_micros(micros: np.ndarray) -> pa.Array:
    """int64 micros as exact decimal128(38, 6) (the unscaled value is the micros)."""
    words = np.empty((len(micros), 2), np.int64)
    words[:, 0] = micros
    words[:, 1] = micros >> 63  # sign extension to 128 bits
    return pa.Array.from_buffers(pa.decimal128(38, 6), len(micros),
                                 [None, pa.py_buffer(words)])


def truth_of(world: World, plan: Plan) -> dict[tuple[str, str], Decimal]:
    """Exact SUM(cost) + SUM(credits.amount) per (billing_account_id, invoice.month)."""
    c = plan.cols
    table = pa.table({
        "account": world.accounts.take(pa.array(c["account"])),
        "month": world.invoices.field("month").take(pa.array(c["invoice"])),
        "cost": _decimal_micros(c["cost"]),
        "credits": _decimal_micros(c["credit"].sum(axis=1)),
    })
    sums = table.group_by(["account", "month"]).aggregate([("cost", "sum"), ("credits", "sum")])
    return {(r["account"], r["month"]): r["cost_sum"] + r["credits_sum"]
            for r in sums.to_pylist()}


def nodes_of(world: World, plan: Plan) -> dict[str, pa.Array | Pick | Record | Repeated]:
    """The plan's rows as export columns (`TYPED_SCHEMA` names and types)."""
    c = plan.cols
    n = len(plan)

    def pick(catalog: pa.Array, name: str) -> Pick:
        return Pick(catalog, c[name])

    def ftype(name: str) -> pa.DataType:
        return TYPED_SCHEMA.field(name).type

    credits_type = ftype("credits")
    present = c["credit"] != 0
    rows, kinds = np.nonzero(present)
    flat_entry = c["credit_entry"][rows, kinds]
    offsets = np.concatenate([[0], np.cumsum(present.sum(axis=1))])
    credit = Record(credits_type.value_type, {
        "name": Pick(world.credit_names, flat_entry),
        "amount": pa.array(c["credit"][rows, kinds] / 1e6),
        "full_name": Pick(world.credit_full_names, flat_entry),
        "id": Pick(world.credit_ids, flat_entry),
        "type": Pick(world.credit_types, flat_entry)})
    usage = Record(ftype("usage"), {
        "amount": pa.array(c["usage_amount"]), "unit": pick(world.units, "usage_unit"),
        "amount_in_pricing_units": pa.array(c["pricing_amount"]),
        "pricing_unit": pick(world.units, "pricing_unit")}, valid=c["has_usage"])
    export = pa.array(c["export_us"], pa.int64()).cast(ftype("export_time"))
    no_float = pa.nulls(n, pa.float64())
    return {
        "billing_account_id": pick(world.accounts, "account"),
        "service": pick(world.services, "service"), "sku": pick(world.skus, "sku"),
        "usage_start_time": pick(world.hours, "start"),
        "usage_end_time": pick(world.hours, "end"),
        "project": pick(world.projects, "project"),
        "labels": pick(world.labels, "resource"),
        "system_labels": pick(world.system_labels, "resource"),
        "location": pick(world.locations, "location"),
        "resource": pick(world.resources, "resource"), "tags": pick(world.tags, "resource"),
        "price": pick(world.prices, "price"),
        "subscription": pick(world.subscriptions, "subscription"),
        "transaction_type": pick(world.transaction_types, "transaction"),
        "seller_name": pick(world.sellers, "seller"),
        "export_time": export,
        "cost": pa.array(c["cost"] / 1e6),  # correctly rounded: shortest text = the micros
        "currency": pick(world.currencies, "account"),
        "currency_conversion_rate": pick(world.rates, "account"),
        "usage": usage,
        "credits": Repeated(credits_type, offsets, credit),
        "invoice": pick(world.invoices, "invoice"),
        "cost_type": pick(world.cost_types, "cost_type"),
        "adjustment_info": pick(world.adjustments, "adjustment"),
        "cost_at_list": pa.array(c["cost_at_list"] / 1e6, mask=~c["has_list"]),
        "consumption_model": pick(world.consumption_models, "consumption_model"),
        "cost_at_effective_price_default": no_float,
        "cost_at_list_consumption_model": no_float,
    }


def _stats(world: World, plan: Plan) -> dict[str, int]:
    c = plan.cols
    counts = np.bincount(c["cost_type"], minlength=len(world.cost_types))
    credits = (c["credit"] != 0).sum(axis=1)
    fee = np.isin(c["sku"], [world.special_skus[f"fee{k}"] for k in range(len(CUD_FEES))])
    return {**{f"cost_type:{name}": int(counts[i])
               for i, name in enumerate(world.cost_types.to_pylist())},
            "late": int(c["invoice"].sum()), "multi_credit": int((credits >= 2).sum()),
            "cud_fee": int(fee.sum()), "cud_covered": int((c["credit"][:, 0] != 0).sum())}


def generate(rows: int, *, seed: int = 7, month: str = "202610", late_fraction: float = 0.02,
             chunk_rows: int = 65_536) -> Iterator[Chunk]:
    """Yield ``rows`` rows in chunks of about ``chunk_rows``; the first chunk starts with the
    month's fixed rows (CUD fees per commitment and day, support).

    Raises:
        ValueError: ``rows`` is smaller than the fixed rows, or ``month`` is not YYYYMM.
    """
    world = build_world(seed, month)
    fixed = fixed_plan(world)
    if rows < len(fixed):
        raise ValueError(f"rows must be at least {len(fixed)} (the month's CUD fee and "
                         f"support rows), got {rows}")
    done, index = 0, 0
    while done < rows:
        take = min(chunk_rows, rows - done)
        rng = np.random.default_rng([seed, int(month), index])
        if index == 0:
            plan = Plan.concat([fixed, random_plan(world, rng, max(take - len(fixed), 0),
                                                   late_fraction)])
            take = len(plan)
        else:
            plan = random_plan(world, rng, take, late_fraction)
        yield Chunk(nodes_of(world, plan), take, truth_of(world, plan), _stats(world, plan))
        done += take
        index += 1


def write_parquet(path: str | Path, rows: int, *, seed: int = 7, month: str = "202610",
                  late_fraction: float = 0.02, chunk_rows: int = 65_536,
                  compression: str = "snappy") -> BulkExport:
    """Write ``rows`` export rows as nested Parquet (BigQuery's Parquet extract: SNAPPY)."""
    started = time.perf_counter()
    out = BulkExport(Path(path), 0)
    out.path.parent.mkdir(parents=True, exist_ok=True)
    # Parquet encoding (GIL released) runs on a second thread while the next chunk is drawn;
    # at most two batches wait, so memory stays flat.
    pending: deque[Future[None]] = deque()
    with pq.ParquetWriter(out.path, TYPED_SCHEMA, compression=compression) as writer, \
            ThreadPoolExecutor(1, "parquet-writer") as pool:
        for chunk in generate(rows, seed=seed, month=month, late_fraction=late_fraction,
                              chunk_rows=chunk_rows):
            pending.append(pool.submit(writer.write_batch, chunk.record_batch()))
            out.add(chunk)
            while len(pending) > 2 or (pending and pending[0].done()):
                pending.popleft().result()
        while pending:
            pending.popleft().result()
    out.seconds = time.perf_counter() - started
    return out


def write_jsonl(path: str | Path, rows: int, *, seed: int = 7, month: str = "202610",
                late_fraction: float = 0.02, chunk_rows: int = 65_536,
                compresslevel: int = 6) -> BulkExport:
    """Write ``rows`` export rows as newline-delimited JSON (gzip when ``path`` ends in .gz),
    one BigQuery JSON-extract record per line."""
    started = time.perf_counter()
    out = BulkExport(Path(path), 0)
    out.path.parent.mkdir(parents=True, exist_ok=True)
    renderer = JsonRenderer()
    record_type = pa.struct(list(TYPED_SCHEMA))
    sink = TextSink(out.path, gzip=out.path.suffix == ".gz", level=compresslevel)
    try:
        for chunk in generate(rows, seed=seed, month=month, late_fraction=late_fraction,
                              chunk_rows=chunk_rows):
            lines = renderer.record(Record(record_type, chunk.nodes), suffix="\n")
            sink.write(line_bytes(lines))
            out.add(chunk)
    finally:
        sink.close()
    out.seconds = time.perf_counter() - started
    return out


def write_export(path: str | Path, rows: int, **options: object) -> BulkExport:
    """Parquet or JSON lines by the file name (``.parquet``; ``.json``/``.json.gz``)."""
    name = str(path)
    if name.endswith(".parquet"):
        return write_parquet(path, rows, **options)  # type: ignore[arg-type]
    if name.endswith((".json", ".json.gz", ".jsonl", ".jsonl.gz")):
        return write_jsonl(path, rows, **options)  # type: ignore[arg-type]
    raise ValueError(f"{name}: expected a .parquet, .json or .json.gz output file")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write one export file and print its truth as JSON."""
    parser = argparse.ArgumentParser(prog="python -m costflow.providers.gcp.samples.bulk",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", required=True, help=".parquet, .json or .json.gz")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--month", default="202610", help="invoice month YYYYMM")
    parser.add_argument("--late-fraction", type=float, default=0.02)
    args = parser.parse_args(argv)
    try:
        info = write_export(args.out, args.rows, seed=args.seed, month=args.month,
                            late_fraction=args.late_fraction)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({
        "path": str(info.path), "rows": info.rows, "seconds": round(info.seconds, 2),
        "rows_per_second": round(info.rows / info.seconds),
        "size_bytes": info.path.stat().st_size,
        "truth": [{"billing_account_id": a, "invoice_month": m, "total": str(v)}
                  for (a, m), v in sorted(info.truth.items())],
        "stats": info.stats}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
