"""moto's S3/IAM/STS server with request authentication on, for the credentials tests.

With ``INITIAL_NO_AUTH_ACTION_COUNT=3`` moto answers the first three requests unauthenticated
(create the admin user, its key and its policy) and then checks every request like AWS: the
access key must exist (else 403 ``InvalidAccessKeyId``), the SigV4 signature must match the
secret key (else 403 ``SignatureDoesNotMatch``), and the caller's IAM policies must allow the
action. So a source that reads the bucket proves it signed with the credentials held in the
secret store, and deleting the key in IAM revokes it as AWS would.

The server runs in its own process (its request log stays out of the tests' log capture).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import requests

from tests.secret_peers import free_port, stop_process

ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"}]})
ALLOW_S3_READ = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"], "Resource": "*"}]})
TRUST_ANYONE = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})


@dataclass(frozen=True)
class Keys:
    """Credentials moto issued (the JSON a ``cloud-creds/{tenant}/aws`` secret holds)."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    user: str | None = None

    def secret_json(self) -> str:
        doc = {"aws_access_key_id": self.access_key_id,
               "aws_secret_access_key": self.secret_access_key, "region": "us-east-1"}
        if self.session_token:
            doc["aws_session_token"] = self.session_token
        return json.dumps(doc)

    def values(self) -> list[str]:
        return [v for v in (self.access_key_id, self.secret_access_key, self.session_token) if v]


class AuthMotoServer:
    """``python -m moto.server`` with authentication, and an admin key for the test's setup."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.admin: Keys | None = None

    def start(self, timeout_s: float = 20.0) -> AuthMotoServer:
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            try:
                requests.get(f"{self.url}/moto-api/", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not answer on {self.url}") from None
                time.sleep(0.1)
        iam = self._client("iam", Keys("bootstrap", "bootstrap"))
        iam.create_user(UserName="admin")
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=ALLOW_ALL)
        self.admin = Keys(key["AccessKeyId"], key["SecretAccessKey"], user="admin")
        return self

    def _client(self, service: str, keys: Keys) -> Any:
        return boto3.session.Session(
            aws_access_key_id=keys.access_key_id, aws_secret_access_key=keys.secret_access_key,
            aws_session_token=keys.session_token, region_name="us-east-1",
        ).client(service, endpoint_url=self.url)

    def client(self, service: str) -> Any:
        """An admin client (setup and revocation)."""
        assert self.admin is not None
        return self._client(service, self.admin)

    def reader(self) -> Keys:
        """A new IAM user allowed to list and read buckets, and its access key."""
        user = f"reader-{uuid.uuid4().hex[:8]}"
        iam = self.client("iam")
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=ALLOW_S3_READ)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return Keys(key["AccessKeyId"], key["SecretAccessKey"], user=user)

    def role_session(self) -> Keys:
        """Temporary credentials (with a session token) of a role allowed to read buckets."""
        name = f"reader-role-{uuid.uuid4().hex[:8]}"
        iam = self.client("iam")
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_ANYONE)["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="read", PolicyDocument=ALLOW_S3_READ)
        got = self.client("sts").assume_role(RoleArn=arn,
                                             RoleSessionName="costflow-test")["Credentials"]
        return Keys(got["AccessKeyId"], got["SecretAccessKey"], got["SessionToken"])

    def revoke(self, keys: Keys) -> None:
        """Delete the user's access key in IAM (AWS then answers 403 InvalidAccessKeyId)."""
        assert keys.user is not None
        self.client("iam").delete_access_key(UserName=keys.user, AccessKeyId=keys.access_key_id)

    def stop(self) -> None:
        stop_process(self.process)
