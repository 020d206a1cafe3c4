"""Text a person reads: exact decimals and result tables (text, JSON, CSV).

Beam-free and provider-free, so the CLI, the query services, the demo and the run reports share
one definition of how money is written.

>>> exact(Decimal("1.2300"))
'1.23'
>>> print(render_table([{"service": "EC2", "cost": Decimal("2.50")}], ["service", "cost"], "csv"))
service,cost
EC2,2.5
>>> money(Decimal("1234567.895"), "USD"), money(Decimal("1234.5"), "JPY")
('1,234,567.90', '1,234')

Display rounding (`money`) is to the currency's ISO 4217 minor unit, half-even, with thousands
separators; it is only ever applied to what a person reads on a terminal or in the HTML report:
JSON and CSV keep the exact decimal text (`exact`).
"""

from __future__ import annotations

import csv
import io
import json
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

# ISO 4217 minor units that are not 2 (SIX list, 2025); every other code has 2.
_MINOR_UNIT_EXCEPTIONS = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
}
MINOR_UNITS: dict[str, int] = {code: places for places, codes in _MINOR_UNIT_EXCEPTIONS.items()
                               for code in codes.split()}


def exact(value: Decimal) -> str:
    """Exact decimal text without float formatting or trailing zeros ('0' for zero)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


TIME_COLUMNS = ("day", "month")


def minor_unit(currency: str | None) -> int:
    """Decimal places of the currency's minor unit (2 when unknown or None)."""
    return MINOR_UNITS.get(currency or "", 2)


def money(value: Decimal, currency: str | None = None) -> str:
    """``value`` rounded half-even to the currency's minor unit, with thousands separators."""
    places = minor_unit(currency)
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    text = f"{rounded:,.{places}f}"
    return text[1:] if text.startswith("-") and rounded.is_zero() else text


def render_table(rows: list[dict[str, Any]], columns: list[str], fmt: str) -> str:
    """Rows as a text table, JSON or CSV; decimals stay exact text."""
    def text(v: Any) -> str:
        if isinstance(v, Decimal):
            return exact(v)
        return "" if v is None else str(v)

    if fmt == "json":
        return json.dumps([{c: text(r[c]) if isinstance(r[c], Decimal) else r[c]
                            for c in columns} for r in rows], indent=2, default=str)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[text(r[c]) for c in columns] for r in rows])
        return buf.getvalue().rstrip("\n")
    cells = [[text(r[c]) for c in columns] for r in rows]
    numeric = [bool(cells) and all(_is_number(row[i]) for row in cells)
               for i in range(len(columns))]
    return _aligned(columns, cells, numeric)


def _aligned(columns: list[str], cells: list[list[str]], numeric: list[bool],
             footer: list[list[str]] | None = None) -> str:
    """Plain text columns: numbers right-aligned, a rule under the header (and above a footer)."""
    everything = cells + (footer or [])
    widths = [max([len(c)] + [len(row[i]) for row in everything])
              for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if numeric[i] else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths, strict=True))).rstrip()
    rule = line(["-" * w for w in widths])
    out = [line(columns), rule]
    out += [line(row) for row in cells]
    if not cells:
        out.append("(no rows in this range)")
    if footer and cells:
        out += [rule, *[line(row) for row in footer]]
    return "\n".join(out)


def render_costs(rows: list[dict[str, Any]], columns: list[str], fmt: str, *,
                 cost: str = "cost", currency: str = "BillingCurrency",
                 terminal: bool = False) -> str:
    """A cost result for a person: JSON and CSV exactly as `render_table` (exact decimals, the
    warehouse's order); the table sorted by cost descending (within each day or month, when
    one is a column, and within each currency), money rounded to the currency's minor unit with
    thousands separators, and a total row per currency. ``terminal``: drawn with rich (a
    terminal), else plain aligned text (a pipe or a file).
    """
    if fmt != "table":
        return render_table(rows, columns, fmt)
    times = [c for c in columns if c in TIME_COLUMNS]
    totals: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = totals.setdefault(r[currency], {cost: Decimal(0), "rows": 0})
        entry[cost] += r[cost] if r[cost] is not None else Decimal(0)
        entry["rows"] += r.get("rows") or 0
    rank = {code: i for i, code in enumerate(sorted(totals))}  # amounts never compared across
    ordered = sorted(rows, key=lambda r: (*(str(r[t]) for t in times), rank[r[currency]],
                                          -(r[cost] or 0)))

    def shown(row: dict[str, Any], column: str) -> str:
        value = row.get(column)
        if column == cost and isinstance(value, Decimal):
            return money(value, row.get(currency))
        if isinstance(value, Decimal):
            return exact(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return "" if value is None else str(value)

    cells = [[shown(r, c) for c in columns] for r in ordered]
    footer = []
    for code in sorted(totals, key=rank.__getitem__):
        row = {currency: code, cost: totals[code][cost], "rows": totals[code]["rows"]}
        line = [shown(row, c) if c in (currency, cost, "rows") else "" for c in columns]
        line[0] = line[0] or "total"
        footer.append(line)
    numeric = _display_numeric(columns, cells)
    if terminal:
        return _rich_table(columns, cells, numeric, footer)
    return _aligned(columns, cells, numeric, footer)


def render_display(rows: list[dict[str, str]], columns: list[str]) -> str:
    """Rows already formatted for display (e.g. `money`) as aligned plain text: formatted
    numbers (thousands separators, blanks) are right-aligned."""
    cells = [[rows_value(r, c) for c in columns] for r in rows]
    return _aligned(columns, cells, _display_numeric(columns, cells))


def rows_value(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value)


def _display_numeric(columns: list[str], cells: list[list[str]]) -> list[bool]:
    return [bool(cells) and all(_is_number(row[i].replace(",", "")) for row in cells if row[i])
            for i in range(len(columns))]


def _rich_table(columns: list[str], cells: list[list[str]], numeric: list[bool],
                footer: list[list[str]]) -> str:
    """The same table drawn by rich, as text with the terminal's escape codes."""
    import shutil

    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold")
    for i, name in enumerate(columns):
        table.add_column(name, justify="right" if numeric[i] else "left")
    for row in cells:
        table.add_row(*row)
    if not cells:
        table.add_row("(no rows in this range)", *[""] * (len(columns) - 1))
    elif footer:
        table.add_section()
        for row in footer:
            table.add_row(*row, style="bold")
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=shutil.get_terminal_size().columns)
    console.print(table)
    return buf.getvalue().rstrip("\n")


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
        return True
    except ArithmeticError:
        return False
