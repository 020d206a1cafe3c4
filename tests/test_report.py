"""`costflow report` rendered by a real browser: headless Chromium runs the embedded Plotly and
dumps the DOM; each chart must have drawn data points, and the totals on the page must equal
the warehouse's, computed here with a direct SQL query (not through costflow).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from costflow.cli import main
from tests.budgets_fixtures import AWS_ACCT, SPIKE, build_warehouse

CONFIG = """
version: 1
tenants:
  - id: acme
    billing_accounts: ["{aws}"]
    policies:
      budgets:
        - {{name: aws-monthly, amount: "1500", currency: USD, forecast: false}}
"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


def browser(*args: str) -> str:
    done = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--virtual-time-budget=15000", *args],
                          capture_output=True, text=True, timeout=90, check=True)
    return done.stdout


def chart_sections(dom: str) -> dict[str, str]:
    """The DOM text of each chart wrapper, by its id (wrappers follow each other)."""
    marks = list(re.finditer(r'<div class="chart" data-chart="([^"]+)">', dom))
    return {m.group(1): dom[m.end():marks[i + 1].start() if i + 1 < len(marks) else len(dom)]
            for i, m in enumerate(marks)}


def test_report_renders_charts_with_points_and_the_warehouse_totals(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    warehouse, _ = build_warehouse(tmp_path / "w.duckdb")
    warehouse.close()
    config = tmp_path / "costflow.yaml"
    config.write_text(CONFIG.format(aws=AWS_ACCT))
    out = tmp_path / "cost-report.html"
    assert main(["report", "--start", "2026-09-01", "--end", "2026-12-01", "--out", str(out),
                 "--config", str(config), "--warehouse",
                 f"duckdb:///{tmp_path}/w.duckdb"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out.resolve()}"
    page = out.read_text()
    assert not re.search(r"<script[^>]+src=", page)        # plotly.js is inline: no network

    shot = tmp_path / "shot.png"       # one browser run: the DOM after Plotly drew, and a PNG
    dom = browser("--window-size=1300,5200", f"--screenshot={shot}", "--dump-dom",
                  out.as_uri())
    charts = chart_sections(dom)
    assert set(charts) == {"chart-daily-EUR", "chart-daily-USD", "chart-services",
                           "chart-accounts", "chart-tags", "chart-forecast", "chart-budget-0"}
    for name, section in charts.items():
        # Plotly draws a bar or marker as <path class="point">, a line as class="js-line".
        drawn = section.count('class="point"') + section.count("js-line")
        assert drawn > 0, f"{name} has no data points drawn"
    # One bar per day: 75 days of Azure in EUR; AWS and Google Cloud stacked in USD.
    assert charts["chart-daily-EUR"].count('class="point"') == 75
    assert charts["chart-daily-USD"].count('class="point"') == 75 * 2   # AWS, Google Cloud

    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    expected = dict(con.execute(
        "SELECT BillingCurrency, SUM(BilledCost) FROM cost_analytics.cost_line_items "
        "WHERE ChargePeriodStart >= TIMESTAMPTZ '2026-09-01 00:00:00+00' "
        "AND ChargePeriodStart < TIMESTAMPTZ '2026-12-01 00:00:00+00' "
        "GROUP BY 1").fetchall())
    ec2_nov = con.execute(
        "SELECT SUM(BilledCost) FROM cost_analytics.cost_line_items WHERE ServiceName = "
        "'Amazon Elastic Compute Cloud' AND ChargePeriodStart >= TIMESTAMPTZ "
        "'2026-11-01 00:00:00+00' AND ChargePeriodStart < TIMESTAMPTZ "
        "'2026-12-01 00:00:00+00'").fetchone()[0]
    con.close()
    shown = dict(re.findall(r'<td class="money total" data-exact="[^"]+" data-code="(\w+)">'
                            r"([^<]+)</td>", dom))
    exact_shown = dict((c, Decimal(v)) for v, c in re.findall(
        r'<td class="money total" data-exact="([^"]+)" data-code="(\w+)">', dom))
    assert exact_shown == expected
    assert shown == {c: f"{v.quantize(Decimal('0.01')):,}" for c, v in expected.items()}
    assert f'data-exact="{ec2_nov.normalize():f}">{ec2_nov.quantize(Decimal("0.01")):,}' in dom
    assert "reconciled" in dom and date(2026, 11, 14).isoformat() in dom
    # The planted spike: a row of the anomaly table, and markers on the daily-total chart.
    table = dom[dom.index('<table id="anomalies">'):]
    table = table[:table.index("</table>")]
    assert re.search(rf"<tr><td>{SPIKE}</td><td>spike</td><td>provider=Google Cloud</td>"
                     r'<td>USD</td><td class="money" data-exact="257.5">257.50</td>', table)
    assert charts["chart-forecast"].count('class="point"') > 0
    assert "anomaly" in charts["chart-forecast"]

    assert shot.stat().st_size > 50_000
    keep = os.environ.get("COSTFLOW_REPORT_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_the_demo_ends_with_the_cost_report(aws_demo) -> None:
    last = aws_demo.text.splitlines()[-1]
    match = re.fullmatch(r"cost report: (\S+) \(open it in a browser; .*\)", last)
    assert match, last
    page = Path(match.group(1))
    assert page == aws_demo.cwd / "cost-report.html" and page.is_file()
    html = page.read_text()
    for chart in ("chart-daily-USD", "chart-services", "chart-accounts", "chart-forecast"):
        assert f'data-chart="{chart}"' in html
    assert "reconciled" in html
