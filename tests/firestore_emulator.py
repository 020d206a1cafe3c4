"""The real Firestore emulator of the Google Cloud SDK, for the metadata-store tests.

`FirestoreEmulator` runs ``gcloud emulators firestore start --host-port=127.0.0.1:PORT`` in a
session (process group) of its own: gcloud starts a shell script that starts Java, so stopping
means signalling the whole group. It is ready when an HTTP GET on the port answers ``Ok``.
Security rules deny every end-user request; the SDK's emulator mode sends ``Bearer owner``,
which the emulator treats as an administrator and lets through, while `client(..., user=...)`
sends an (unsigned, as the emulator accepts) Firebase ID token instead, so the rules apply and
the emulator answers PERMISSION_DENIED for real.

The SDK reads ``FIRESTORE_EMULATOR_HOST`` once, when a client is built: `client` sets it only
for that moment and restores the environment, so other tests never see it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.secret_peers import free_port

EMULATOR_ENV = "FIRESTORE_EMULATOR_HOST"
DENY_END_USERS = """rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /{document=**} {
      allow read, write: if false;
    }
  }
}
"""


def missing_tools() -> str | None:
    """Why the emulator cannot run here, or None."""
    for tool in ("gcloud", "java"):
        if shutil.which(tool) is None:
            return (f"{tool} is not on PATH: the Firestore emulator needs the Google Cloud SDK "
                    "(with its cloud-firestore-emulator component) and Java 17+")
    return None


def firebase_id_token(project: str, uid: str) -> str:
    """An unsigned Firebase ID token (alg none): the emulator accepts it, production never."""
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    claims = {"iss": f"https://securetoken.google.com/{project}", "aud": project, "sub": uid,
              "user_id": uid, "iat": 0, "exp": 4102444800,
              "firebase": {"sign_in_provider": "custom", "identities": {}}}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@contextmanager
def emulator_env(host: str) -> Iterator[None]:
    """``FIRESTORE_EMULATOR_HOST=host`` for the duration only (the SDK reads it at build)."""
    before = os.environ.get(EMULATOR_ENV)
    os.environ[EMULATOR_ENV] = host
    try:
        yield
    finally:
        if before is None:
            del os.environ[EMULATOR_ENV]
        else:
            os.environ[EMULATOR_ENV] = before


class FirestoreEmulator:
    """``gcloud emulators firestore start`` on a free port of 127.0.0.1, in its own group."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log = workdir / "emulator.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0

    def start(self, timeout_s: float = 90.0) -> FirestoreEmulator:
        rules = self.workdir / "deny-end-users.rules"
        rules.write_text(DENY_END_USERS)
        began = time.monotonic()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                ["gcloud", "emulators", "firestore", "start", f"--host-port={self.host}",
                 f"--rules={rules}", "--quiet"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)  # setsid(): gcloud, its shell and Java in one group
        while time.monotonic() - began < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Firestore emulator exited with "
                                   f"{self.process.returncode}: {self.tail()}")
            try:
                if requests.get(f"http://{self.host}/", timeout=1).text.strip() == "Ok":
                    self.startup_seconds = time.monotonic() - began
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the Firestore emulator did not answer on {self.host} in "
                           f"{timeout_s:g} s: {self.tail()}")

    def tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return " ".join(text.split()[-60:])

    def stop(self) -> None:
        if self.process is None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
                _wait_group_gone(self.process.pid, wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.process = None

    def client(self, project: str, database: str = "(default)", user: str | None = None
               ) -> Any:
        """A Firestore client of the emulator: as the administrator, or as end user ``user``
        (then the deny-all rules apply)."""
        from google.cloud import firestore

        cls: Any = firestore.Client
        if user is not None:
            token = firebase_id_token(project, user)

            class EndUserClient(firestore.Client):
                @property
                def _rpc_metadata(self) -> list[tuple[str, str]]:
                    return [(k, f"Bearer {token}" if k == "authorization" else v)
                            for k, v in super()._rpc_metadata]

            cls = EndUserClient
        with emulator_env(self.host):
            return cls(project=project, database=database)


def _wait_group_gone(pgid: int, timeout_s: float) -> None:
    """Until no process of the group is left (Java exits after gcloud)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise subprocess.TimeoutExpired(f"process group {pgid}", timeout_s)
