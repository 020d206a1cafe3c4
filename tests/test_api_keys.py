"""`costflow keys` and the key store: a key is shown once, stored only as its hash, revocable.

The commands run through `costflow.cli.main` with a costflow.yaml declaring one tenant and a
local metadata store; the store's file is then read raw to check the key is not in it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from costflow import cli
from costflow.metadata import connect
from costflow.services import api_keys

CONFIG = """\
version: 1
metadata: local:///{where}/metadata.sqlite
tenants:
  - id: acme
    billing_accounts: ["111111111111"]
"""


def test_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "costflow.yaml"
    config.write_text(CONFIG.format(where=tmp_path))
    flags = ["--config", str(config)]
    assert cli.main(["keys", "create", "--tenant", "acme", "--name", "finops-agent",
                     *flags]) == 0
    key = capsys.readouterr().out.splitlines()[0]
    assert key.startswith("cfk_") and len(key) == 4 + 12 + 1 + 43

    assert cli.main(["keys", "list", "--format", "json", *flags]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["tenant"], listed["name"], listed["revoked_at"]) == (
        "acme", "finops-agent", None)
    assert key[4:16] == listed["key_id"]
    raw = (tmp_path / "metadata.sqlite").read_bytes()
    assert key.encode() not in raw and key[17:].encode() not in raw
    assert api_keys.digest(key).encode() in raw

    store = connect(f"local:///{tmp_path}/metadata.sqlite")
    try:
        assert api_keys.verify(store, key).tenant == "acme"
        assert cli.main(["keys", "revoke", listed["key_id"], *flags]) == 0
        assert "revoked" in capsys.readouterr().out
        with pytest.raises(api_keys.KeyRejected, match="was revoked"):
            api_keys.verify(store, key)
    finally:
        store.close()

    assert cli.main(["keys", "create", "--tenant", "globex", "--name", "x", *flags]) == 2
    assert "no tenant 'globex'" in capsys.readouterr().err
    assert cli.main(["keys", "revoke", "0123456789ab", *flags]) == 2
    assert cli.main(["mcp", "--transport", "http", "--billing-account", "1", *flags]) == 2
    assert "bearer key decides the tenant" in capsys.readouterr().err


def test_verify_refuses_what_is_not_a_live_key(tmp_path: Path) -> None:
    store = connect(f"local:///{tmp_path}/m.sqlite")
    try:
        _, key = api_keys.create_key(store, "acme", "agent")
        for presented, words in [(None, "needs a bearer key"), ("", "needs a bearer key"),
                                 ("Bearer x", "not a costflow key"),
                                 (key[:-2] + "zz", "not a key of this deployment"),
                                 ("cfk_000000000000_" + key[17:], "not a key of this")]:
            with pytest.raises(api_keys.KeyRejected, match=words):
                api_keys.verify(store, presented)
        with pytest.raises(Exception, match="key name"):
            api_keys.create_key(store, "acme", "  ")
    finally:
        store.close()
