"""A moto S3 server on 127.0.0.1 and a bucket laid out like real AWS billing deliveries.

Shared by the S3 tests: the server is a real HTTP peer (boto3 talks to it as to S3); the bucket
holds a legacy CUR (October, and November delivered twice: the second assembly restates the
month), a CUR 2.0 export (two executions, Parquet) and a FOCUS 1.2 export, each for its own
payer account, with the manifests AWS writes.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import boto3

from costflow.providers.aws.samples import exports as ax
from costflow.providers.aws.samples.cur import generate_cur

BUCKET = "billing-bucket"
LEGACY_PAYER, CUR2_PAYER, FOCUS_PAYER = "111111111111", "222222222222", "333333333333"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Layout:
    """What was written, and the truth per (payer, period): the current delivery's total."""

    root: Path
    truth: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    rows: dict[tuple[str, str], int] = field(default_factory=dict)
    delivery_ids: dict[str, str] = field(default_factory=dict)


def _month(tmp: Path, name: str, rows: int, month: str, payer: str, seed: int,
           final: bool) -> tuple:
    info = generate_cur(tmp / f"{name}.csv.gz", rows, month=month, payer_account=payer,
                        seed=seed, final=final, linked_accounts=2)
    return ax.read_legacy_csv(info.path), info


def build_layout(tmp: Path) -> Layout:
    """Write the bucket's files under ``tmp/<BUCKET>``."""
    root = tmp / BUCKET
    layout = Layout(root)
    gen = tmp / "generated"
    oct_t, oct_i = _month(gen, "oct", 300, "2023-10", LEGACY_PAYER, 1, True)
    ax.write_legacy_delivery(root, "cur/my-report", "2023-10", "aaaa-oct-1", [oct_t],
                             LEGACY_PAYER)
    nov1, _ = _month(gen, "nov1", 240, "2023-11", LEGACY_PAYER, 2, False)
    ax.write_legacy_delivery(root, "cur/my-report", "2023-11", "bbbb-nov-1", [nov1],
                             LEGACY_PAYER)
    nov2, nov2_i = _month(gen, "nov2", 420, "2023-11", LEGACY_PAYER, 3, True)
    half = nov2.num_rows // 2
    ax.write_legacy_delivery(root, "cur/my-report", "2023-11", "cccc-nov-2",
                             [nov2.slice(0, half), nov2.slice(half)], LEGACY_PAYER)
    layout.truth[(LEGACY_PAYER, "2023-10-01")] = oct_i.unblended_total
    layout.truth[(LEGACY_PAYER, "2023-11-01")] = nov2_i.unblended_total
    layout.rows[(LEGACY_PAYER, "2023-10-01")] = oct_i.rows
    layout.rows[(LEGACY_PAYER, "2023-11-01")] = nov2_i.rows
    layout.delivery_ids["legacy-nov"] = "cccc-nov-2"

    old, _ = _month(gen, "cur2-old", 200, "2023-11", CUR2_PAYER, 4, False)
    ax.write_data_export(root, "exports/cur2/my-export", "2023-11", "1111-old",
                         "20231120T010203Z", [ax.to_cur2(old)])
    new, new_i = _month(gen, "cur2-new", 260, "2023-11", CUR2_PAYER, 5, False)
    ax.write_data_export(root, "exports/cur2/my-export", "2023-11", "2222-new",
                         "20231121T010203Z", [ax.to_cur2(new)])
    layout.truth[(CUR2_PAYER, "2023-11-01")] = new_i.unblended_total
    layout.rows[(CUR2_PAYER, "2023-11-01")] = new_i.rows
    layout.delivery_ids["cur2"] = "2222-new"

    focus, focus_i = _month(gen, "focus", 230, "2023-11", FOCUS_PAYER, 6, False)
    ax.write_data_export(root, "exports/focus/my-focus", "2023-11", "3333-focus",
                         "20231121T020304Z", [ax.to_focus(focus)])
    layout.truth[(FOCUS_PAYER, "2023-11-01")] = focus_i.unblended_total
    layout.rows[(FOCUS_PAYER, "2023-11-01")] = focus_i.rows
    return layout


def upload(root: Path, client: boto3.client) -> None:
    """Put every file under ``root`` into the bucket (key = path relative to ``root``)."""
    client.create_bucket(Bucket=BUCKET)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.put_object(Bucket=BUCKET, Key=path.relative_to(root).as_posix(),
                              Body=path.read_bytes())
