"""OpenCost allocation API answers (saved ``.json`` files and fetched pages) as Arrow batches.

Why this module exists: the allocation API (``/allocation/compute`` and ``/allocation``) answers
``{"code": 200, "data": [{<name>: Allocation, ...}, ...]}``, one map per step of the window
[OpenCost API docs, "Allocation API"]. The normalizer (`costflow.providers.opencost.allocation`)
is written over flat text columns, like every other normalizer, so this module flattens each
Allocation into one row: its ``properties`` (cluster, node, namespace, controllerKind,
controller, pod, container, providerID; ``labels`` as a JSON object), its ``window`` and
``start``/``end``, and every number as text.

Exact money: OpenCost computes in float64 and writes JSON numbers. A number is parsed as the
IEEE double OpenCost held and written back as the *shortest* decimal text that round-trips to
that double (Arrow's float -> string cast, `costflow.transforms.arrow_text.as_text`, the helper
the other readers of float exports use). So ``0.30414999999999998`` and ``0.30415`` (two
printings of one double) both load as ``0.30415``; no arithmetic is ever done on a float: the
normalizer parses that text as an exact decimal. A value that is not a number (a string, an
object) is kept as its JSON text, so the normalizer dead-letters that row naming the field.

A saved answer is recognised by its first key (``{"code"``, ``{"status"`` or ``{"data"``),
which a newline-delimited JSON export (GCP's ``.json`` files) never starts with; the provider
declares `plan_saved` as a local layout, so ``.json`` stays GCP's suffix for other files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from costflow.errors import SourceError
from costflow.providers.opencost.planned import PROVIDER, OpencostSourceFile, with_planner_columns
from costflow.sources import files
from costflow.sources.contract import Plan, PlanRequest, SourceCatalog, SourceFile
from costflow.transforms.arrow_text import as_text

CONTAINER = "opencost_allocation"
SOURCE_FORMAT = "opencost_allocation"
BATCH_ROWS = 16_384

# Allocation.properties fields kept as columns [OpenCost core/pkg/opencost/allocation.go,
# AllocationProperties JSON names].
PROPERTIES = ("cluster", "node", "namespace", "controllerKind", "controller", "pod", "container",
              "providerID")
LABELS = "labels"
WINDOW_START, WINDOW_END = "windowStart", "windowEnd"
# Allocation numbers [allocation.go, Allocation MarshalJSON]: usage, costs, adjustments,
# efficiencies. All float64 in OpenCost.
NUMBERS = (
    "minutes", "cpuCores", "cpuCoreRequestAverage", "cpuCoreUsageAverage", "cpuCoreHours",
    "cpuCost", "cpuCostAdjustment", "cpuEfficiency", "gpuCount", "gpuHours", "gpuCost",
    "gpuCostAdjustment", "networkTransferBytes", "networkReceiveBytes", "networkCost",
    "networkCrossZoneCost", "networkCrossRegionCost", "networkInternetCost",
    "networkCostAdjustment", "loadBalancerCost", "loadBalancerCostAdjustment", "pvBytes",
    "pvByteHours", "pvCost", "pvCostAdjustment", "ramBytes", "ramByteRequestAverage",
    "ramByteUsageAverage", "ramByteHours", "ramCost", "ramCostAdjustment", "ramEfficiency",
    "sharedCost", "externalCost", "totalCost", "totalEfficiency",
)
TEXTS = ("name", *PROPERTIES, LABELS, WINDOW_START, WINDOW_END, "start", "end")
COLUMNS = (*TEXTS, *NUMBERS)
_ANSWER_START = re.compile(rb'\A\s*\{\s*"(code|status|data|message)"\s*:')


def looks_like_answer(head: bytes) -> bool:
    """True when the first bytes of a file open an allocation API answer."""
    return bool(_ANSWER_START.match(head.lstrip(b"\xef\xbb\xbf")))


def parse_answer(body: bytes, uri: str) -> list[dict[str, Any]]:
    """The allocation maps (one per step) of an answer; a `SourceError` naming ``uri`` and the
    JSON path when it is not one."""
    try:
        answer = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise SourceError(uri, f"is not UTF-8 text ({exc.reason} at byte {exc.start}).",
                          expected="an OpenCost allocation API answer (JSON)") from None
    except json.JSONDecodeError as exc:
        raise SourceError(uri, f"is not valid JSON ({exc.msg} at line {exc.lineno} column "
                          f"{exc.colno}); nothing was read.", row=exc.lineno,
                          expected='an OpenCost allocation API answer {"code":200,"data":[...]}'
                          ) from None
    if not isinstance(answer, dict):
        raise SourceError(uri, f"is a JSON {type(answer).__name__}, not an object.",
                          expected='{"code":200,"data":[{<name>: Allocation}, ...]}')
    code = answer.get("code", 200)
    if code != 200:
        said = str(answer.get("message") or answer.get("warning") or "")[:200]
        raise SourceError(uri, f"is an OpenCost error answer (code {code}"
                          f"{': ' + said if said else ''}); nothing was read.", column="code",
                          expected="an answer with code 200")
    data = answer.get("data")
    if data is None:
        return []
    if isinstance(data, dict):  # accumulate=true answers one map, not a list of maps
        data = [data]
    if not isinstance(data, list):
        raise SourceError(uri, f"field data is a JSON {type(data).__name__}, expected an "
                          "array of allocation maps (one per step).", column="data",
                          expected='"data":[{<name>: Allocation}, ...]')
    for step, allocations in enumerate(data):
        if allocations is not None and not isinstance(allocations, dict):
            raise SourceError(uri, f"field data[{step}] is a JSON "
                              f"{type(allocations).__name__}, expected an object of "
                              "allocations by name.", column=f"data[{step}]",
                              expected="{<name>: Allocation, ...}")
    return [a or {} for a in data]  # an empty step (no allocation) stays, for its index


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _checked(allocation: Any, step: int, key: str,
             uri: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(allocation, properties, window), or a `SourceError` naming the one that is not an
    object."""
    if not isinstance(allocation, dict):
        raise SourceError(uri, f"allocation data[{step}][{key!r}] is a JSON "
                          f"{type(allocation).__name__}, not an object.",
                          column=f"data[{step}][{key!r}]", expected="an Allocation object")
    properties = allocation.get("properties") or {}
    window = allocation.get("window") or {}
    if not isinstance(properties, dict) or not isinstance(window, dict):
        bad = "properties" if not isinstance(properties, dict) else "window"
        raise SourceError(uri, f"allocation data[{step}][{key!r}]: field {bad} is not an "
                          "object.", column=bad, expected=f"{bad} as a JSON object")
    return allocation, properties, window


def check_shapes(maps: Sequence[dict[str, Any]], uri: str) -> None:
    for step, allocations in enumerate(maps):
        for key, allocation in allocations.items():
            _checked(allocation, step, key, uri)


def _columns(maps: Sequence[dict[str, Any]], uri: str) -> dict[str, list[Any]]:
    """Every allocation as one entry of each column (texts as text, numbers as parsed)."""
    out: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    texts = [(out[name], name) for name in PROPERTIES]
    numbers = [(out[name], name) for name in NUMBERS]
    for step, allocations in enumerate(maps):
        for key, found in allocations.items():
            allocation, properties, window = _checked(found, step, key, uri)
            out["name"].append(_text(allocation.get("name") or key))
            for values, name in texts:
                values.append(_text(properties.get(name)))
            out[LABELS].append(_text(properties.get(LABELS) or None))  # a JSON object's text
            out[WINDOW_START].append(_text(window.get("start")))
            out[WINDOW_END].append(_text(window.get("end")))
            out["start"].append(_text(allocation.get("start")))
            out["end"].append(_text(allocation.get("end")))
            for values, name in numbers:
                values.append(allocation.get(name))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def number_text(values: list[Any]) -> pa.Array:
    """JSON numbers as the shortest text of their double (vectorized, Arrow's cast); any other
    value (a string, an object, true) as its JSON text, for the normalizer to refuse by name."""
    if not any(type(v) is bool for v in values):  # Arrow would take true as 1
        try:
            return as_text(pa.array(values, pa.float64()))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # a value that is not a number: the exact path below
    shortest = as_text(pa.array([float(v) if _is_number(v) else None for v in values],
                                pa.float64()))
    if all(v is None or _is_number(v) for v in values):
        return shortest
    others = pa.array([None if v is None or _is_number(v) else _text(v) for v in values],
                      pa.string())
    return pc.coalesce(shortest, others)


def to_batches(maps: Sequence[dict[str, Any]], uri: str) -> Iterator[pa.RecordBatch]:
    """Flat string batches of the allocations (see COLUMNS)."""
    columns = _columns(maps, uri)
    rows = len(columns["name"])
    for first in range(0, rows, BATCH_ROWS):
        last = first + BATCH_ROWS
        arrays = [pa.array(columns[name][first:last], pa.string()) for name in TEXTS]
        arrays += [number_text(columns[name][first:last]) for name in NUMBERS]
        yield pa.RecordBatch.from_arrays(arrays, names=list(COLUMNS))


def count_rows(maps: Sequence[dict[str, Any]]) -> int:
    return sum(len(m) for m in maps)


def read_answer(source: SourceFile,
                catalog: SourceCatalog) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(first row number, batch) of one answer: a fetched page (its cache) or a saved file."""
    if not isinstance(source, OpencostSourceFile):
        raise TypeError(f"{source.uri}: not planned as an OpenCost allocation answer")
    if source.cache_path:
        with open(source.cache_path, "rb") as f:
            body = f.read()
    else:
        with catalog.open(source.uri) as f:
            body = f.read()
    if hashlib.sha256(body).hexdigest() != source.sha256:
        raise SourceError(source.uri, "changed between planning and reading; nothing from "
                          "this run was committed.", expected="an unchanged file: rerun")
    row = 1
    for batch in to_batches(parse_answer(body, source.uri), source.uri):
        yield row, with_planner_columns(batch, source)
        row += batch.num_rows


def planned_answer(uri: str, body: bytes,
                   cache_path: str = "") -> tuple[OpencostSourceFile | None, int]:
    """The planned source of one answer and its number of allocations; None when it holds
    none (an empty window). Parsing at planning refuses a malformed answer before anything is
    read."""
    maps = parse_answer(body, uri)
    rows = count_rows(maps)
    if not rows:
        return None, 0
    check_shapes(maps, uri)  # an allocation that is not an object: refused now
    return OpencostSourceFile(
        uri=uri, size_bytes=len(body), sha256=hashlib.sha256(body).hexdigest(),
        container=CONTAINER, compression=None, columns=COLUMNS, source_format=SOURCE_FORMAT,
        provider=PROVIDER, cache_path=cache_path), rows


def _saved_candidates(pattern: str) -> list[str] | None:
    """The .json files a local pattern names: a file, a directory of them, or a glob."""
    if "://" in pattern:
        return None
    if any(c in pattern for c in "*?["):
        return sorted(p for p in files.local_glob(pattern)
                      if p.lower().endswith(".json")) or None
    if os.path.isfile(pattern):
        return [pattern] if pattern.lower().endswith(".json") else None
    if os.path.isdir(pattern):
        return sorted(os.path.join(pattern, n) for n in os.listdir(pattern)
                      if n.lower().endswith(".json")
                      and os.path.isfile(os.path.join(pattern, n))) or None
    return None


def plan_saved(pattern: str, request: PlanRequest) -> Plan | None:
    """Saved allocation API answers (a ``.json`` file, a directory or a glob of them); None for
    any other path, which the shared file planner then takes."""
    if request.provider not in (None, PROVIDER):
        return None
    candidates = _saved_candidates(pattern)
    if not candidates:
        return None
    heads = {}
    for path in candidates:
        try:
            with open(path, "rb") as f:
                heads[path] = f.read(256)
        except OSError:
            return None  # the shared file planner reports what is wrong with the path
    answers = [p for p in candidates if looks_like_answer(heads[p])]
    if not answers:
        return None
    others = [p for p in candidates if p not in answers]
    if others:
        raise SourceError(others[0], f"is named by {pattern!r} beside OpenCost allocation "
                          "answers but is not one (its first key is not code, status or data).",
                          expected="only allocation API answers in the directory or glob, or "
                          "name the files one by one")
    plan = Plan()
    for path in answers:
        with open(path, "rb") as f:
            body = f.read()
        source, _ = planned_answer(path, body)
        if source is None:
            plan.empty_files.append(path)
            plan.notes.append(f"{path}: an OpenCost answer with no allocation (an empty "
                              "window): nothing to load")
        else:
            plan.files.append(source)
    return plan
