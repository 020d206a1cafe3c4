"""Text a person reads: exact decimals and result tables (text, JSON, CSV).

Beam-free and provider-free, so the CLI, the query services, the demo and the run reports share
one definition of how money is written.

>>> exact(Decimal("1.2300"))
'1.23'
>>> print(render_table([{"service": "EC2", "cost": Decimal("2.50")}], ["service", "cost"], "csv"))
service,cost
EC2,2.5
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any


def exact(value: Decimal) -> str:
    """Exact decimal text without float formatting or trailing zeros ('0' for zero)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


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
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(row[i]) for row in cells) and cells for i in range(len(columns))]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if numeric[i] else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths, strict=True))).rstrip()
    out = [line(columns), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    if not rows:
        out.append("(no rows in this range)")
    return "\n".join(out)


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
        return True
    except ArithmeticError:
        return False
