"""The cost report as one self-contained HTML file: Plotly charts, tables, no network needed.

Why this module exists: `costflow.services.report` gathers exact figures; this module only
draws them. Plotly's JavaScript is embedded once (``include_plotlyjs=True`` on the first chart),
so the file opens offline and can be mailed. Money is rounded to the currency's minor unit only
here, for display (`costflow.text.money`); each rounded amount carries its exact value in a
``data-exact`` attribute, and chart values are floats for drawing only. Every chart is a
``<div class="chart" id="chart-...">``; a section with nothing to show says why instead.
"""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from costflow.services.report import Change, ReportData
from costflow.text import exact, money

ANOMALY_ROWS = 20

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1200px;color:#1f2933;background:#fff}
h1{margin-bottom:0}h2{margin-top:36px;border-bottom:1px solid #d9e2ec;padding-bottom:4px}
.sub{color:#52606d;margin-top:4px}table{border-collapse:collapse;margin:8px 0 16px}
th,td{padding:4px 10px;border-bottom:1px solid #e4e7eb;text-align:left}
td.money,td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.up{color:#c62828}.down{color:#2e7d32}.note{color:#52606d;font-style:italic}
.ok{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:600}
.totals td{font-size:1.3em;font-weight:600}.grid{display:grid;grid-template-columns:1fr 1fr;
gap:16px}
"""


class _Charts:
    """Figures to HTML divs; the first carries plotly.js, the others reuse it."""

    def __init__(self) -> None:
        self.first = True

    def div(self, figure: Any, chart_id: str) -> str:
        figure.update_layout(margin={"l": 60, "r": 20, "t": 40, "b": 40}, height=380,
                             template="plotly_white")
        out: str = figure.to_html(full_html=False, include_plotlyjs=self.first,
                                  div_id=chart_id, config={"displaylogo": False})
        self.first = False
        return f'<div class="chart" data-chart="{chart_id}">{out}</div>'


def render(data: ReportData) -> str:
    """The page."""
    charts = _Charts()
    parts = [f"<h1>Cost report {data.start} to {data.end - timedelta(days=1)}</h1>",
             f'<p class="sub">{html.escape(data.warehouse)} · generated '
             f'{data.generated_at:%Y-%m-%d %H:%M} UTC · BilledCost · periods are [start, '
             "end), UTC</p>"]
    parts += _totals(data)
    parts += _daily(data, charts)
    parts += _changes(data, charts)
    parts += _tags(data, charts)
    parts += _namespaces(data, charts)
    parts += _forecast(data, charts)
    parts += _budgets(data, charts)
    parts += _loads(data)
    body = "\n".join(parts)
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Cost "
            f"report {data.start} to {data.end}</title><style>{STYLE}</style></head>"
            f"<body>{body}</body></html>")


def write(data: ReportData, out: str | Path) -> Path:
    """Render and write atomically (temporary name, then rename); returns the path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(data), encoding="utf-8")
    tmp.replace(path)
    return path


def _cell(value: Decimal, currency: str, cls: str = "money", **attrs: str) -> str:
    extra = "".join(f' data-{k}="{html.escape(v)}"' for k, v in attrs.items())
    return (f'<td class="{cls}" data-exact="{exact(value)}"{extra}>'
            f"{money(value, currency)}</td>")


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _totals(data: ReportData) -> list[str]:
    if not data.totals:
        return ["<h2>Total</h2>", _note("No charges in this range.")]
    rows = "".join(f"<tr><td>{html.escape(t['currency'])}</td>"
                   f"{_cell(t['cost'], t['currency'], 'money total', code=t['currency'])}"
                   f"<td class=\"num\">{t['rows']:,} rows</td></tr>" for t in data.totals)
    return ["<h2>Total</h2>", f'<table class="totals" id="totals">{rows}</table>']


def _daily(data: ReportData, charts: _Charts) -> list[str]:
    import plotly.graph_objects as go

    out = ["<h2>Daily cost by provider</h2>"]
    for total in data.totals:
        currency = total["currency"]
        per: dict[str, dict[date, Decimal]] = defaultdict(dict)
        for d in data.daily:
            if d["currency"] == currency:
                per[d["provider"]][d["day"]] = d["cost"]
        fig = go.Figure([go.Bar(name=p, x=list(days), y=[float(v) for v in days.values()])
                         for p, days in sorted(per.items())])
        fig.update_layout(barmode="stack", title=f"Daily cost ({currency})",
                          yaxis_title=currency)
        out.append(charts.div(fig, f"chart-daily-{currency}"))
    if not data.totals:
        out.append(_note("No charges in this range."))
    return out


def _changes(data: ReportData, charts: _Charts) -> list[str]:
    import plotly.graph_objects as go

    if data.months is None:
        return []
    previous, current = data.months
    out = [f"<h2>Top services and accounts, {current:%B %Y} against {previous:%B %Y}</h2>"]
    if data.last_day is not None and data.last_day.month == current.month and (
            data.last_day + timedelta(days=1)).day != 1:
        out.append(_note(f"{current:%B %Y} has charges up to {data.last_day} only: a partial "
                         "month against a whole one."))
    out.append('<div class="grid">')
    for title, items, chart_id in (("Services", data.services, "chart-services"),
                                   ("Accounts", data.accounts, "chart-accounts")):
        names = [c.name for c in items][::-1]
        fig = go.Figure([
            go.Bar(name=f"{previous:%b %Y}", y=names, orientation="h",
                   x=[float(c.previous) for c in items][::-1]),
            go.Bar(name=f"{current:%b %Y}", y=names, orientation="h",
                   x=[float(c.current) for c in items][::-1])])
        fig.update_layout(title=f"Top {title.lower()}", barmode="group")
        out.append(f"<div><h3>{title}</h3>{charts.div(fig, chart_id)}{_change_table(items)}"
                   "</div>")
    return [*out, "</div>"]


def _change_table(items: list[Change]) -> str:
    rows = []
    for c in items:
        pct = c.percent
        shown = "new" if pct is None else f"{pct:+.1f}\u00a0%"
        cls = "num" if pct is None else ("num up" if pct > 0 else "num down" if pct < 0
                                         else "num")
        rows.append(f"<tr><td>{html.escape(c.name)}</td><td>{c.currency}</td>"
                    f"{_cell(c.current, c.currency)}{_cell(c.previous, c.currency)}"
                    f"{_cell(c.change, c.currency)}<td class=\"{cls}\">{shown}</td></tr>")
    head = ("<tr><th>name</th><th>cur.</th><th class=\"num\">this month</th>"
            "<th class=\"num\">month before</th><th class=\"num\">change</th>"
            "<th class=\"num\">%</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _tags(data: ReportData, charts: _Charts) -> list[str]:
    import plotly.graph_objects as go

    if data.tag_key is None:
        return ["<h2>Cost by tag</h2>", _note("No row in this range carries tags.")]
    out = [f"<h2>Cost by tag {html.escape(data.tag_key)}</h2>"]
    by_currency: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in data.tags:
        by_currency[t["currency"]].append(t)
    traces = [go.Bar(name=cur, x=[t["value"] for t in items],
                     y=[float(t["cost"]) for t in items])
              for cur, items in sorted(by_currency.items())]
    fig = go.Figure(traces)
    fig.update_layout(title=f"Cost by tag {data.tag_key} (per currency)", barmode="group")
    return [*out, charts.div(fig, "chart-tags")]


IDLE = "(idle / unclaimed)"


def _namespaces(data: ReportData, charts: _Charts) -> list[str]:
    """Allocated cost per Kubernetes namespace; no section when nothing was allocated."""
    import plotly.graph_objects as go

    if not data.namespaces:
        return []
    out = ["<h2>Cost by Kubernetes namespace (allocated)</h2>",
           _note("Cluster node and volume charges of the bill split onto the namespaces that "
                 "used them (costflow allocate); idle is capacity no pod requested or used. "
                 "Per charge the split adds up to the bill exactly.")]
    rows = "".join(
        f"<tr><td>{html.escape(n['cluster'])}</td>"
        f"<td>{html.escape(n['namespace'] or IDLE)}</td>"
        f"{_cell(n['cost'], n['currency'], namespace=n['namespace'] or IDLE)}"
        f"<td>{html.escape(n['currency'])}</td></tr>" for n in data.namespaces)
    out.append('<table id="namespaces"><tr><th>cluster</th><th>namespace</th>'
               f'<th class="num">cost</th><th>currency</th></tr>{rows}</table>')
    traces: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for n in data.namespaces:
        traces[(n["cluster"], n["currency"])].append(n)
    fig = go.Figure([go.Bar(name=f"{cluster} ({currency})",
                            x=[n["namespace"] or IDLE for n in items],
                            y=[float(n["cost"]) for n in items])
                     for (cluster, currency), items in sorted(traces.items())])
    fig.update_layout(title="Allocated cost by namespace", barmode="group")
    return [*out, charts.div(fig, "chart-namespaces")]


def _forecast(data: ReportData, charts: _Charts) -> list[str]:
    import plotly.graph_objects as go

    out = ["<h2>Daily total, forecast band and anomalies</h2>"]
    currency = data.forecast_currency or data.main_currency
    if currency is None:
        return [*out, _note("No charges in this range.")]
    history: dict[date, Decimal] = defaultdict(Decimal)
    for d in data.daily:
        if d["currency"] == currency:
            history[d["day"]] += d["cost"]
    days = sorted(history)
    traces = [go.Scatter(name=f"actual ({currency})", x=days,
                         y=[float(history[d]) for d in days], mode="lines")]
    if data.forecast:
        x = [p["day"] for p in data.forecast]
        traces += [
            go.Scatter(name="upper", x=x, y=[float(p["upper"]) for p in data.forecast],
                       mode="lines", line={"width": 0}, showlegend=False),
            go.Scatter(name="95 % interval", x=x, y=[float(p["lower"]) for p in data.forecast],
                       mode="lines", line={"width": 0}, fill="tonexty",
                       fillcolor="rgba(99,110,250,0.2)"),
            go.Scatter(name="forecast", x=x, y=[float(p["cost"]) for p in data.forecast],
                       mode="lines", line={"dash": "dash"})]
    marked = [a for a in data.anomalies if a.currency == currency]
    if marked:
        traces.append(go.Scatter(
            name="anomaly", x=[a.day for a in marked],
            y=[float(history.get(a.day, a.actual)) for a in marked], mode="markers",
            marker={"size": 12, "color": "#c62828", "symbol": "x"},
            text=[", ".join(f"{k}={v}" for k, v in a.dimensions.items()) for a in marked]))
    fig = go.Figure(traces)
    fig.update_layout(title=f"Daily total ({currency})", yaxis_title=currency)
    out.append(charts.div(fig, "chart-forecast"))
    if data.forecast_note:
        out.append(_note(f"Forecast left out: {data.forecast_note}"))
    if data.anomalies_note:
        out.append(_note(f"Anomalies not marked: {data.anomalies_note}"))
    elif not data.anomalies:
        out.append(_note("No anomalies found (daily cost per provider)."))
    else:
        out.append(_anomaly_table(data))
    return out


def _anomaly_table(data: ReportData) -> str:
    """The anomalies found (daily cost per provider), the largest departures first."""
    items = sorted(data.anomalies, key=lambda a: (-abs(a.difference), a.day))[:ANOMALY_ROWS]
    rows = "".join(
        f"<tr><td>{a.day}</td><td>{html.escape(a.kind)}</td>"
        f"<td>{html.escape(', '.join(f'{k}={v}' for k, v in a.dimensions.items()))}</td>"
        f"<td>{a.currency}</td>{_cell(a.actual, a.currency)}{_cell(a.expected, a.currency)}"
        f"{_cell(a.difference, a.currency)}</tr>" for a in items)
    more = len(data.anomalies) - len(items)
    head = ("<tr><th>day</th><th>kind</th><th>where</th><th>cur.</th><th class=\"num\">actual"
            "</th><th class=\"num\">expected</th><th class=\"num\">difference</th></tr>")
    tail = _note(f"and {more} more") if more > 0 else ""
    return f'<table id="anomalies">{head}{rows}</table>{tail}'



def _budgets(data: ReportData, charts: _Charts) -> list[str]:
    import plotly.graph_objects as go

    if not data.budgets:
        return ["<h2>Budgets</h2>", _note("No budgets declared in the config (policies."
                                          "budgets of a tenant), or no --config given.")]
    out = ["<h2>Budget burn-down</h2>"]
    for i, s in enumerate(data.budgets):
        b = s.budget
        days, running, total = [], [], Decimal(0)
        for day in sorted(s.daily):
            total += s.daily[day]
            days.append(day)
            running.append(float(total))
        last_day = s.period_end - timedelta(days=1)
        traces = [go.Scatter(name="spent", x=days, y=running, mode="lines+markers"),
                  go.Scatter(name="budget", x=[s.period_start, last_day],
                             y=[float(b.amount)] * 2, mode="lines",
                             line={"color": "#c62828"})]
        if s.projected is not None and days:
            traces.append(go.Scatter(name="projected", x=[days[-1], last_day],
                                     y=[running[-1], float(s.projected)], mode="lines",
                                     line={"dash": "dot"}))
        fig = go.Figure(traces)
        fig.update_layout(title=f"{s.tenant}/{b.name}: {money(s.actual, b.currency)} of "
                                f"{money(b.amount, b.currency)} {b.currency} "
                                f"({s.used_percent:.1f} %)")
        crossed = ", ".join(c.name for c in s.crossed) or "none"
        out.append(charts.div(fig, f"chart-budget-{i}"))
        out.append(f"<p>Period {s.period_start} to {s.period_end} · thresholds crossed: "
                   f"<b>{html.escape(crossed)}</b></p>")
    return out


def _loads(data: ReportData) -> list[str]:
    out = ["<h2>Reconciliation of the loads behind this report</h2>"]
    if not data.loads:
        return [*out, _note("No load run wrote rows in this range.")]
    rows = []
    for r in data.loads:
        if r["slices"] is None:
            state = '<span class="bad">no reconciled slice in the ledger</span>'
        elif r["slices_off"]:
            state = f'<span class="bad">{r["slices_off"]} slice(s) off</span>'
        else:
            state = '<span class="ok">reconciled</span>'
        finished = f"{r['finished_at']:%Y-%m-%d %H:%M}" if r["finished_at"] else ""
        rows.append(
            f"<tr><td>{html.escape(r['run_id'] or '(none)')}</td>"
            f"<td>{html.escape(r['status'] or 'not in ledger')}</td><td>{finished}</td>"
            f"<td>{html.escape(r['providers'] or '')}</td>"
            f"<td class=\"num\">{r['rows_shown']:,}</td>"
            f"<td class=\"num\">{r['slices'] or 0}</td>"
            f"<td class=\"num\">{r['rows_dead_lettered'] or 0:,}</td><td>{state}</td></tr>")
    head = ("<tr><th>run</th><th>status</th><th>finished (UTC)</th><th>providers</th>"
            "<th class=\"num\">rows shown</th><th class=\"num\">slices</th>"
            "<th class=\"num\">dead letters</th><th>reconciliation</th></tr>")
    return [*out, f'<table id="loads">{head}{"".join(rows)}</table>',
            _note("A slice is reconciled when the source's invoice basis equals the "
                  "BilledCost loaded plus the cost dead-lettered, exactly (load_slices).")]
