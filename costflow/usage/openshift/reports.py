"""The four hourly reports of a koku-metrics-operator payload, read into `k8s_usage` rows.

A report's kind is told by its header, as koku does it (`koku/masu/util/ocp/common.py`,
`detect_type`): the first kind whose required columns are all present. Columns koku adds in
newer reports (``node_role``, ``csi_volume_handle``) are read when present. Timestamps are the
operator's Go spelling ``2019-02-01 00:00:00 +0000 UTC`` (UTC only; anything else is refused);
numbers are read as exact decimals from their text; labels ``label_k:v|label_k2:v2`` become a
JSON object without the ``label_`` prefix. Every refusal names the file, row and column.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from costflow.errors import SourceError
from costflow.schemas.columns import DECIMAL_PRECISION, DECIMAL_SCALE
from costflow.schemas.operational import K8S_USAGE
from costflow.schemas.render import arrow_schema
from costflow.usage.openshift.payload import Payload

PERIOD = ("report_period_start", "report_period_end", "interval_start", "interval_end")
# Required columns per report kind (koku's *_COLUMNS sets), in detection order.
REPORTS: dict[str, tuple[str, ...]] = {
    "storage": PERIOD + (
        "namespace", "pod", "persistentvolumeclaim", "persistentvolume", "storageclass",
        "persistentvolumeclaim_capacity_bytes", "persistentvolumeclaim_capacity_byte_seconds",
        "volume_request_storage_byte_seconds", "persistentvolumeclaim_usage_byte_seconds",
        "persistentvolume_labels", "persistentvolumeclaim_labels"),
    "pod": PERIOD + (
        "pod", "namespace", "node", "resource_id", "pod_usage_cpu_core_seconds",
        "pod_request_cpu_core_seconds", "pod_limit_cpu_core_seconds",
        "pod_usage_memory_byte_seconds", "pod_request_memory_byte_seconds",
        "pod_limit_memory_byte_seconds", "node_capacity_cpu_cores",
        "node_capacity_cpu_core_seconds", "node_capacity_memory_bytes",
        "node_capacity_memory_byte_seconds", "pod_labels"),
    "node_labels": PERIOD + ("node", "node_labels"),
    "namespace_labels": PERIOD + ("namespace", "namespace_labels"),
}
OPTIONAL = ("node_role", "csi_volume_handle")
LABELS = {"pod": "pod_labels", "storage": "persistentvolumeclaim_labels",
          "node_labels": "node_labels", "namespace_labels": "namespace_labels"}
SCHEMA = arrow_schema(K8S_USAGE)
DECIMAL = pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE)
_GO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+0000 UTC$")
_NUMBER = r"^[0-9]+(\.[0-9]{0,18})?([eE][+-]?[0-9]+)?$"


def read_payload(payload: Payload, ingested_at: datetime) -> pa.Table:
    """Every report of ``payload`` as one table of `k8s_usage` rows."""
    tables = [read_report(payload, path, ingested_at) for path in payload.files]
    return pa.concat_tables(tables) if tables else SCHEMA.empty_table()


def report_kind(uri: str, columns: list[str]) -> str:
    present = set(columns)
    for kind, required in REPORTS.items():
        if present.issuperset(required):
            return kind
    raise SourceError(uri, "is not a known usage report: its header matches none of pod, "
                      "storage, node labels or namespace labels.",
                      expected=f"e.g. the pod usage columns {', '.join(REPORTS['pod'])}")


def read_report(payload: Payload, path, ingested_at: datetime) -> pa.Table:
    uri = payload.uri(path)
    try:
        raw = pv.read_csv(path, convert_options=pv.ConvertOptions(
            column_types=_all_strings(path), strings_can_be_null=False))
    except (pa.ArrowInvalid, OSError) as err:
        raise SourceError(uri, f"is not a readable CSV ({err}).") from None
    kind = report_kind(uri, raw.column_names)
    n = raw.num_rows
    out: dict[str, pa.Array] = {
        "cluster_id": pa.array([payload.cluster_id] * n, pa.string()),
        "kind": pa.array([kind] * n, pa.string()),
        "payload_uuid": pa.array([payload.uuid] * n, pa.string()),
        "x_SourceUri": pa.array([uri] * n, pa.string()),
        "x_SourceRowNumber": pa.array(range(1, n + 1), pa.int64()),
        "x_IngestedAt": pa.array([ingested_at] * n, pa.timestamp("us", tz="UTC")),
    }
    for name in PERIOD:
        out[name] = _timestamps(uri, raw, name)
    for field in SCHEMA:
        if field.name in out or field.name not in raw.column_names:
            continue
        if pa.types.is_decimal(field.type):
            out[field.name] = _decimals(uri, raw, field.name)
        elif field.name not in ("labels", "volume_labels"):
            out[field.name] = _text(raw.column(field.name).combine_chunks())
    out["labels"] = _labels(raw.column(LABELS[kind]).combine_chunks())
    if kind == "storage":
        out["volume_labels"] = _labels(raw.column("persistentvolume_labels").combine_chunks())
    _check_intervals(uri, out)
    return pa.table({f.name: out.get(f.name, pa.nulls(n, f.type)) for f in SCHEMA},
                    schema=SCHEMA)


def _all_strings(path) -> dict[str, pa.DataType]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    return {name: pa.string() for name in next(iter(_csv_header(header)), [])}


def _csv_header(line: str) -> list[list[str]]:
    import csv

    return list(csv.reader([line]))


def _text(values: pa.Array) -> pa.Array:
    """Empty text is no value."""
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def _first_bad(mask: pa.Array) -> int | None:
    index = pc.index(mask, True).as_py()
    return None if index < 0 else index


def _timestamps(uri: str, raw: pa.Table, name: str) -> pa.Array:
    values = raw.column(name).combine_chunks()
    ok = pc.match_substring_regex(values, _GO_UTC.pattern)
    bad = _first_bad(pc.invert(ok))
    if bad is not None:
        raise SourceError(uri, f"{values[bad].as_py()!r} is not a UTC timestamp.", row=bad + 1,
                          column=name, expected="the operator's '2019-02-01 00:00:00 +0000 UTC'")
    stamps = pc.strptime(pc.utf8_slice_codeunits(values, 0, 19), format="%Y-%m-%d %H:%M:%S",
                         unit="us")
    return pc.assume_timezone(stamps, "UTC")


def _decimals(uri: str, raw: pa.Table, name: str) -> pa.Array:
    values = _text(raw.column(name).combine_chunks())
    ok = pc.or_kleene(pc.is_null(values), pc.match_substring_regex(values, _NUMBER))
    bad = _first_bad(pc.invert(ok))
    if bad is not None:
        raise SourceError(uri, f"{values[bad].as_py()!r} is not a non-negative number with at "
                          "most 18 decimal places.", row=bad + 1, column=name,
                          expected="e.g. 3600 or 0.25")
    try:
        return pc.cast(values, DECIMAL)
    except pa.ArrowInvalid as err:
        raise SourceError(uri, f"a value does not fit DECIMAL(38, 18) exactly ({err}).",
                          column=name) from None


def _labels(values: pa.Array) -> pa.Array:
    """``label_k:v|label_k2:v2`` -> ``{"k": "v", "k2": "v2"}`` (per distinct value)."""
    distinct = pc.unique(values).to_pylist()
    parsed = {text: json.dumps(parse_labels(text), sort_keys=True, ensure_ascii=False)
              for text in distinct}
    keys = pa.array(list(parsed), pa.string())
    return pc.take(pa.array(list(parsed.values()), pa.string()), pc.index_in(values, keys))


def parse_labels(text: str | None) -> dict[str, str]:
    """The operator's label text as a dict; an item without ``:`` is skipped (as koku does)."""
    labels: dict[str, str] = {}
    for item in (text or "").split("|"):
        key, sep, value = item.partition(":")
        if not sep or not key:
            continue
        labels[key.removeprefix("label_")] = value
    return labels


def _check_intervals(uri: str, out: dict[str, pa.Array]) -> None:
    backwards = pc.less_equal(out["interval_end"], out["interval_start"])
    bad = _first_bad(backwards)
    if bad is not None:
        raise SourceError(uri, "interval_end is not after interval_start.", row=bad + 1,
                          column="interval_end")
