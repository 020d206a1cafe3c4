"""Run the FinOps Foundation's FOCUS validator (`focus-validator` 2.2.x) and read its verdict.

Why a wrapper: the validator needs Python >= 3.12 (the project runs on 3.11), so it lives in its
own virtual environment (`make focus-validator` builds `.venv-focus-validator`); it reads
``focus_validator/rules/currency_codes.csv`` relative to the working directory; and it exits 0
even when rules fail. This module runs it offline (``--block-download``) in a scratch working
directory holding that file, and parses the console output into rule outcomes.

Without applicability criteria the validator skips every rule that depends on a provider
feature (about 440 of its 578 rules for 1.2), so a pass says little. `criteria_for` is the one
list of criteria costflow claims, used by `costflow export --validate` and the conformance tests:
`COMMON_CRITERIA`, which AWS, Azure and Google Cloud all meet, plus `PROVIDER_CRITERIA` extras
that hold for every provider in the export.

`ALLOWED_FAILURES` is the explicit allow-list: rules of focus-validator 2.2.1 that fail on valid
data. Every entry quotes the rule and says why it is wrong. Anything else that fails is a real
conformance problem.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("COSTFLOW_FOCUS_VALIDATOR_VENV", ROOT / ".venv-focus-validator"))
VERSION = "2.2.1"

# Applicability criteria (`focus-validator --show-applicability-criteria`, model 1.2.0.1) that
# the three clouds all meet: tags, regions and zones, commitment discounts (RIs/SPs, reservations
# and savings plans, CUDs), sub accounts (member accounts, subscriptions, projects), measured
# usage with unit prices, public price lists, more than one pricing category, typed resources,
# billing on provisioned resources, negotiated (EDP, EA, contract) prices and capacity
# reservations (EC2 ODCRs, Azure capacity reservations, GCE reservations).
COMMON_CRITERIA: tuple[str, ...] = (
    "TAGGING_SUPPORTED", "REGION_SUPPORTED", "AVAILABILITY_ZONE_SUPPORTED",
    "COMMITMENT_DISCOUNT_SUPPORTED", "SUB_ACCOUNT_SUPPORTED", "USAGE_MEASUREMENT_SUPPORTED",
    "UNIT_PRICING_SUPPORTED", "PUBLIC_PRICE_LIST_SUPPORTED",
    "MULTIPLE_PRICING_CATEGORIES_SUPPORTED", "RESOURCE_TYPE_ASSIGNMENT_SUPPORTED",
    "BILLING_BASED_ON_PROVISIONED_RESOURCES_SUPPORTED", "NEGOTIATED_PRICING_SUPPORTED",
    "CAPACITY_RESERVATION_SUPPORTED",
)
# Extras per FOCUS ProviderName, claimed only where the export carries what they require:
# Azure EA/MCA exports name the billing account (BillingAccountName); Google prices in USD and
# bills in the account's currency (`currency_conversion_rate`). AWS's legacy CUR and Google's
# billing export carry no billing-account name, so ACCOUNT_NAMING_SUPPORTED is not claimed there.
PROVIDER_CRITERIA: dict[str, tuple[str, ...]] = {
    "AWS": (),
    "Microsoft": ("ACCOUNT_NAMING_SUPPORTED",),
    "Google Cloud": ("PRICING_BILLING_CURRENCY_DIFFERENCES_SUPPORTED",),
}

# Rule id -> why its failure is a validator defect, not a problem of our data (rule text quoted
# from focus_validator/rules/model-1.2.0.1.json).
ALLOWED_FAILURES: dict[str, str] = {
    # "InvoiceId MUST be null when the charge is not associated either with an invoice or with
    # a pre-generated provisional invoice." / "InvoiceId MUST NOT be null when the charge is
    # associated with either an issued invoice or a pre-generated provisional invoice."
    "InvoiceId-C-004-C": "the rule's Condition is empty ({}), so 2.2.1 demands a null InvoiceId "
                         "on every row, invoiced ones included",
    "InvoiceId-C-005-C": "the rule's Condition is empty ({}), so 2.2.1 demands an InvoiceId on "
                         "every row, open-month ones included (the CUR leaves bill/InvoiceId "
                         "blank until the invoice is issued)",
    # "CommitmentDiscountStatus MUST NOT be null when CommitmentDiscountId is not null and Charge
    # Category is "Usage"."
    "CommitmentDiscountStatus-C-004-C": "the rule's Condition is CheckValue(CommitmentDiscountId,"
                                        " null), i.e. 'Id IS NULL', the inverse of its text, and "
                                        "drops the ChargeCategory = Usage part: it fires on every "
                                        "row without a commitment discount",
    # "CapacityReservationStatus MUST NOT be null when CapacityReservationId is not null and
    # ChargeCategory is "Usage"."
    "CapacityReservationStatus-C-004-C": "the rule's Condition is written {\"AND\": [...]} "
                                         "without a CheckFunction; the 2.2.1 condition compiler "
                                         "ignores it (no filter), so it fires on every row "
                                         "without a capacity reservation",
}
_RESULT = re.compile(r"^\S+\s+(?P<rule>[A-Za-z]+-[A-Z]-\d{3}-[A-Z]):\s+(?P<status>PASS|FAIL|"
                     r"SKIPPED|ERROR)\b(?:.*?violations=(?P<violations>\d+))?(?:.*?msg=(?P<msg>"
                     r".*?)(?:, [\d.]+ms)?\)\s*$)?")
_TOTALS = re.compile(r"Total:\s*(\d+)\s*\|\s*Pass:\s*(\d+)\s*\|\s*Fail:\s*(\d+)"
                     r"(?:\s*\|\s*Skipped:\s*(\d+))?")


class ValidatorUnavailable(RuntimeError):
    """The validator's virtual environment is not installed (see `make focus-validator`)."""


@dataclass(frozen=True)
class RuleOutcome:
    rule: str
    status: str
    violations: int
    message: str


@dataclass(frozen=True)
class Verdict:
    outcomes: dict[str, RuleOutcome]
    output: str

    @property
    def failures(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes.values() if o.status in ("FAIL", "ERROR")]

    @property
    def unexpected_failures(self) -> list[RuleOutcome]:
        """Failures of rules not on the allow-list; composite parents of allowed ones aside."""
        return self.failures_beyond(())

    def failures_beyond(self, excused: Iterable[str]) -> list[RuleOutcome]:
        """Failures of rules neither allow-listed nor in ``excused``, composites aside whose
        failed children (transitively) all are."""
        known = set(ALLOWED_FAILURES) | set(excused)
        return [o for o in self.failures if not self._excused(o.rule, known, 0)]

    def _excused(self, rule: str, known: set[str], depth: int) -> bool:
        # A composite rule (…-C-000-…) fails when a child does: "AND failed - failed child rules:
        # [X, Y]". It is excused only when every failed child is.
        if rule in known:
            return True
        outcome = self.outcomes.get(rule)
        children = _failed_children(outcome.message) if outcome else []
        return bool(children) and depth < 10 and all(
            self._excused(c, known, depth + 1) for c in children)

    @property
    def passed(self) -> int:
        return sum(o.status == "PASS" for o in self.outcomes.values())

    @property
    def counts(self) -> dict[str, int]:
        """The validator's own totals line: ``{"total", "pass", "fail", "skipped"}``."""
        found = _TOTALS.search(self.output)
        assert found is not None  # parse() refuses output without it
        total, passed, failed, skipped = (int(g) if g else 0 for g in found.groups())
        return {"total": total, "pass": passed, "fail": failed, "skipped": skipped}

    def summary(self) -> str:
        c = self.counts
        return (f"Total: {c['total']} | Pass: {c['pass']} | Fail: {c['fail']} | "
                f"Skipped: {c['skipped']} | unexpected failures: "
                f"{len(self.unexpected_failures)}")


def _failed_children(message: str) -> list[str]:
    found = re.search(r"failed child rules: \[([^\]]*)\]", message)
    return [c.strip() for c in found.group(1).split(",") if c.strip()] if found else []


def criteria_for(providers: Iterable[str]) -> tuple[str, ...]:
    """The applicability criteria to validate an export of these FOCUS ProviderNames with:
    `COMMON_CRITERIA` plus the `PROVIDER_CRITERIA` extras every one of them meets.

    >>> criteria_for(["Microsoft"])[-1]
    'ACCOUNT_NAMING_SUPPORTED'
    >>> criteria_for(["Microsoft", "AWS"]) == COMMON_CRITERIA
    True
    """
    names = set(providers)
    extras = [set(PROVIDER_CRITERIA.get(n, ())) for n in names]
    shared = set.intersection(*extras) if extras else set()
    return COMMON_CRITERIA + tuple(sorted(shared))


def providers_in(data_file: str | os.PathLike[str]) -> list[str]:
    """The distinct FOCUS ProviderName values of a FOCUS Parquet file."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    column = pq.read_table(data_file, columns=["ProviderName"]).column("ProviderName")
    return sorted(str(v) for v in pc.unique(column).drop_null().to_pylist())


def executable() -> Path:
    path = VENV / "bin" / "focus-validator"
    if not path.exists():
        raise ValidatorUnavailable(
            f"{path} is absent: `make focus-validator` installs focus-validator {VERSION} into "
            f"{VENV} (it needs a Python >= 3.12, e.g. pyenv's 3.12.1)")
    return path


def parse(output: str) -> Verdict:
    """Rule outcomes from the validator's console output."""
    outcomes: dict[str, RuleOutcome] = {}
    for line in output.splitlines():
        m = _RESULT.match(line.strip())
        if m:
            outcomes[m["rule"]] = RuleOutcome(m["rule"], m["status"],
                                              int(m["violations"] or 0),
                                              (m["msg"] or "").strip())
    if not outcomes or not _TOTALS.search(output):
        raise ValueError("focus-validator printed no results; its output was:\n"
                         + output[-2000:])
    return Verdict(outcomes, output)


def validate(data_file: str | os.PathLike[str], version: str = "1.2",
             timeout: float = 900, criteria: Iterable[str] = ()) -> Verdict:
    """Validate a FOCUS Parquet file offline; returns the parsed verdict.

    Args:
        criteria: applicability criteria (`criteria_for`); none runs only the rules that
            apply to every provider.
    """
    claimed = ",".join(criteria)
    exe = executable()
    rules = next((VENV / "lib").glob("python3.*/site-packages/focus_validator/rules"))
    with tempfile.TemporaryDirectory(prefix="focus-validator-") as work:
        target = Path(work) / "focus_validator" / "rules"
        target.mkdir(parents=True)
        shutil.copy(rules / "currency_codes.csv", target / "currency_codes.csv")
        done = subprocess.run(
            [str(exe), "--data-file", str(Path(data_file).resolve()), "--validate-version",
             version, "--block-download",
             *(["--applicability-criteria", claimed] if claimed else [])],
            cwd=work, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"focus-validator exited {done.returncode}: {done.stderr[-2000:]}")
    return parse(done.stdout)


def check_export(data_file: str | os.PathLike[str], version: str = "1.2",
                 ) -> tuple[bool, list[str]]:
    """Validate an export with the criteria of the providers in it; ``(ok, report lines)``.

    ``ok`` is False when a rule off the allow-list fails. Raises `ValidatorUnavailable` when the
    validator is not installed or carries no rule model for ``version`` (2.2.1 ships 1.2 only
    and runs offline here).
    """
    if version != "1.2":
        raise ValidatorUnavailable(
            f"focus-validator {VERSION} ships only the FOCUS 1.2 rule model (newer ones are "
            f"downloaded at run time, which costflow does not do); FOCUS {version} is not "
            "validated")
    executable()
    criteria = criteria_for(providers_in(data_file))
    verdict = validate(data_file, version, criteria=criteria)
    lines = [f"focus-validator {VERSION}, FOCUS {version}, applicability criteria: "
             + ",".join(criteria),
             verdict.summary()]
    allowed = [o.rule for o in verdict.failures if o.rule in ALLOWED_FAILURES]
    if allowed:
        lines.append("allow-listed validator defects: " + ", ".join(sorted(allowed)))
    lines += [f"FAIL {o.rule} ({o.violations} rows): {o.message}"
              for o in verdict.unexpected_failures if not _failed_children(o.message)]
    ok = not verdict.unexpected_failures
    lines.append("verdict: " + ("conforms (allow-list aside)" if ok else "does not conform"))
    return ok, lines
