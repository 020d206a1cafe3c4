"""AWS account names from AWS Organizations, for bills that carry account ids only.

Why: the legacy CUR has ``lineItem/UsageAccountId`` and no account name (CUR 2.0 adds
``line_item_usage_account_name``), so FOCUS SubAccountName would be null on every row
(validator rule SubAccountName-C-005-C). The organization's management account lists every
member account with its name (``ListAccounts``, paginated). costflow stores those names in the
warehouse (`costflow.services.account_names`) and the FOCUS views take them where the bill has
none; a name is never made up from the id.

The client uses the credentials reference of the command (``--credentials secret://...``) or
boto3's standard chain; ``COSTFLOW_ORGANIZATIONS_ENDPOINT_URL`` points it at another endpoint
(moto in the tests).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from costflow.errors import SourceError

if TYPE_CHECKING:
    from costflow.sources.credentials import CredentialsRef

ENDPOINT_ENV = "COSTFLOW_ORGANIZATIONS_ENDPOINT_URL"
REGION = "us-east-1"  # Organizations is a global service served from us-east-1
_WHERE = "AWS Organizations ListAccounts"


def fetch_account_names(credentials: CredentialsRef | None = None) -> dict[str, str]:
    """{account id: account name} of every account in the caller's organization.

    Raises:
        SourceError: the caller is not in an organization, may not list its accounts, or the
            API failed; the message says which and what to do.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    client = _client(credentials)
    names: dict[str, str] = {}
    try:
        for page in client.get_paginator("list_accounts").paginate():
            for account in page.get("Accounts", []):
                account_id, name = account.get("Id"), account.get("Name")
                if isinstance(account_id, str) and isinstance(name, str) and name.strip():
                    names[account_id] = name.strip()
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code == "AWSOrganizationsNotInUseException":
            raise SourceError(_WHERE, "the account these credentials belong to is not in an "
                              "organization.", expected="credentials of the organization's "
                              "management account (or a delegated administrator), or names "
                              "from a CSV: costflow accounts names --from-csv FILE") from None
        if code in ("AccessDeniedException", "AccessDenied"):
            raise SourceError(_WHERE, "access denied.", expected="organizations:ListAccounts "
                              "allowed for these credentials, in the management account or a "
                              "delegated administrator") from None
        raise SourceError(_WHERE, f"failed: {code or err}.") from None
    except BotoCoreError as err:
        raise SourceError(_WHERE, f"could not be reached: {err}.") from None
    return names


def _client(credentials: CredentialsRef | None) -> Any:
    import boto3

    if credentials is None:
        session = boto3.session.Session()
    else:
        from costflow.sources import credentials as creds

        session = creds.aws_session(credentials, _WHERE)
    return session.client("organizations", region_name=REGION,
                          endpoint_url=os.environ.get(ENDPOINT_ENV) or None)
