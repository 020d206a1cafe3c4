"""AWS Secrets Manager: ``aws-sm://REGION`` (e.g. ``aws-sm://eu-west-1``).

Names are used unchanged (AWS allows ``/``, ``-`` and ``_``); labels become tags. Version ids
are AWS's VersionIds (UUIDs); ``latest`` is the ``AWSCURRENT`` stage.

* `create_secret` is AWS ``CreateSecret`` (the secret and its first version in one call).
* `rotate_secret` is ``PutSecretValue``: the new version becomes ``AWSCURRENT`` and the one
  before ``AWSPREVIOUS``, still readable by its id. AWS's own rotation runs a Lambda that sets
  the new value at the credential's source; costflow rotates a value it was given, so it does
  not start one (moto cannot run Lambdas either).
* `disable_version` is refused: AWS has no per-version disable. Versions older than
  ``AWSPREVIOUS`` lose their staging labels and AWS deletes them once a secret has more than
  100; to revoke a leaked value, rotate the credential at its source.

Credentials come from boto3's standard chain (environment, profile, instance role).
``COSTFLOW_SECRETS_AWS_ENDPOINT_URL`` points the client at another endpoint (moto in tests);
boto3's own ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` works too. Needed IAM actions:
``secretsmanager:GetSecretValue``, ``CreateSecret``, ``PutSecretValue``, ``TagResource`` (for
labels) and ``ListSecretVersionIds``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from costflow.errors import ConfigError
from costflow.secrets import errors, redact
from costflow.secrets.base import LATEST, SecretBackend, SecretVersion

log = logging.getLogger(__name__)

ENDPOINT_ENV = "COSTFLOW_SECRETS_AWS_ENDPOINT_URL"
REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}", re.ASCII)
CURRENT = "AWSCURRENT"
_STAGE_ORDER = {"AWSPENDING": 0, CURRENT: 1, "AWSPREVIOUS": 2}
T = TypeVar("T")


class AwsSecretManager(SecretBackend):
    """Secrets in one AWS region.

    Args:
        region: e.g. ``us-east-1``.
        endpoint_url: another endpoint (default: ``$COSTFLOW_SECRETS_AWS_ENDPOINT_URL``).
        client: a ready boto3 ``secretsmanager`` client (tests: a Stubber's).
    """

    VERSION_ID = re.compile(r"[A-Za-z0-9-]{32,64}", re.ASCII)
    VERSION_HINT = "a VersionId (a UUID) returned by create_secret or rotate_secret"
    PERMISSIONS = ("IAM actions secretsmanager:GetSecretValue, CreateSecret, PutSecretValue, "
                   "ListSecretVersionIds, TagResource, and kms:Decrypt on a customer key")

    def __init__(self, region: str, *, endpoint_url: str | None = None,
                 client: Any = None) -> None:
        if not REGION.fullmatch(region):
            raise ConfigError(f"{region[:40]!r} is not an AWS region (e.g. us-east-1).")
        self.region = region
        self.endpoint_url = endpoint_url or os.environ.get(ENDPOINT_ENV) or None
        self.where = f"AWS Secrets Manager ({region})"
        self._client = client
        self._lock = threading.Lock()
        redact.install()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3

                self._client = boto3.session.Session().client(
                    "secretsmanager", region_name=self.region, endpoint_url=self.endpoint_url)
            return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # --- the blocking operations ---------------------------------------------------------------

    def _get(self, name: str, version: str) -> str:
        where = {"VersionStage": CURRENT} if version == LATEST else {"VersionId": version}
        answer = self._call(name, version, lambda c: c.get_secret_value(SecretId=name, **where))
        if "SecretString" not in answer:
            raise errors.SecretError(f"secret {name!r} in {self.where} holds binary data "
                                     "(SecretBinary), not text: costflow stores text.")
        return str(answer["SecretString"])

    def _create(self, name: str, value: str, labels: dict[str, str]) -> SecretVersion:
        tags = [{"Key": k, "Value": v} for k, v in labels.items()]
        answer = self._call(name, None, lambda c: c.create_secret(
            Name=name, SecretString=value, **({"Tags": tags} if tags else {})), value)
        log.info("created secret %s (version %s) in %s", name, answer["VersionId"], self.where)
        return self._described(name, answer["VersionId"])

    def _rotate(self, name: str, value: str) -> SecretVersion:
        answer = self._call(name, None, lambda c: c.put_secret_value(
            SecretId=name, SecretString=value), value)
        log.info("rotated secret %s to version %s in %s", name, answer["VersionId"], self.where)
        return self._described(name, answer["VersionId"])

    def _list(self, name: str) -> list[SecretVersion]:
        self._call(name, None, lambda c: c.describe_secret(SecretId=name))  # a clear not-found
        entries: list[dict[str, Any]] = []
        paging: dict[str, str] = {}
        while True:
            page = self._call(name, None, functools.partial(
                _list_page, secret_id=name, paging=paging))
            entries += page.get("Versions", [])
            if not page.get("NextToken"):
                break
            paging = {"NextToken": page["NextToken"]}
        # Newest first; CreatedDate has one-second resolution, so stages break ties.
        entries.sort(key=lambda v: min((_STAGE_ORDER.get(s, 3) for s in v.get("VersionStages", [])),
                                       default=3))
        entries.sort(key=lambda v: _utc(v.get("CreatedDate")), reverse=True)
        return [SecretVersion(name, v["VersionId"], _utc(v.get("CreatedDate"))) for v in entries]

    def _disable_checked(self, name: str, version: str) -> SecretVersion:
        raise errors.SecretError(
            f"AWS Secrets Manager has no per-version disable (secret {name!r}, version "
            f"{version}): versions older than AWSPREVIOUS lose their staging labels and AWS "
            "deletes them itself; to revoke a leaked value, rotate the credential at its source.")

    def _disable(self, name: str, version: str) -> SecretVersion:
        return self._disable_checked(name, version)

    # --- helpers -------------------------------------------------------------------------------

    def _described(self, name: str, version_id: str) -> SecretVersion:
        """The new version with its creation time (CreateSecret/PutSecretValue do not say it)."""
        for version in self._list(name):
            if version.version == version_id:
                return version
        return SecretVersion(name, version_id, datetime.now(UTC))

    def _call(self, name: str, version: str | None, call: Callable[[Any], T],
              value: str = "") -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call(self.client())
        except (ClientError, BotoCoreError) as exc:
            error = self._translate(exc, name, version, value)
        raise error  # outside the handler: the SDK's exception is not chained

    def _translate(self, exc: Exception, name: str, version: str | None,
                   value: str) -> errors.SecretError:
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

        if isinstance(exc, NoCredentialsError):
            return errors.SecretAccessDenied(
                f"no AWS credentials for {self.where} (secret {name!r}): set AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where an IAM role applies.")
        if isinstance(exc, EndpointConnectionError):
            return errors.SecretError(f"cannot reach {self.where} at "
                                      f"{self.endpoint_url or 'its AWS endpoint'} "
                                      f"(secret {name!r}): check the network.")
        if not isinstance(exc, ClientError):
            return errors.SecretError(f"{self.where} failed on secret {name!r}: "
                                      f"{type(exc).__name__}.")
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        detail = errors.scrub(str(error.get("Message", "")), value)
        if code == "ResourceNotFoundException":
            return errors.not_found(name, self.where, version)
        if code == "ResourceExistsException":
            return errors.exists(name, self.where)
        if code in ("AccessDeniedException", "UnrecognizedClientException",
                    "InvalidSignatureException", "ExpiredTokenException") or status == 403:
            return errors.denied(name, self.where, self.PERMISSIONS, detail)
        if code == "DecryptionFailure":
            return errors.denied(name, self.where, "kms:Decrypt on the secret's KMS key", detail)
        if code == "InvalidRequestException" and "deletion" in detail:
            return errors.SecretError(f"secret {name!r} in {self.where} is scheduled for "
                                      "deletion: restore it (aws secretsmanager restore-secret) "
                                      "or wait until it is deleted.")
        return errors.SecretError(f"{self.where} refused an operation on secret {name!r}: "
                                  f"{code or status} {detail}".rstrip())


def _list_page(client: Any, *, secret_id: str, paging: dict[str, str]) -> Any:
    return client.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True, **paging)


def _utc(value: object) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.now(UTC)
