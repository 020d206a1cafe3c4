"""Make a key for the local secret store.

    python -m costflow.secrets keygen             print a new key (for COSTFLOW_SECRETS_KEY)
    python -m costflow.secrets keygen --keyring   store a new key in the OS keyring instead

The key is printed on stdout only (the explanation goes to stderr), so
``export COSTFLOW_SECRETS_KEY=$(python -m costflow.secrets keygen)`` works. ``--keyring``
refuses to replace a key the keyring already holds: the secrets written with it would be lost.
"""

from __future__ import annotations

import argparse
import sys

from cryptography.fernet import Fernet

from costflow.errors import CostflowError
from costflow.secrets.local import KEY_ENV, KEYRING_SERVICE, KEYRING_USER, keyring_key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m costflow.secrets",
                                     description="Keys for the local secret store.")
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="make a new Fernet key")
    keygen.add_argument("--keyring", action="store_true",
                        help=f"store it in the OS keyring ({KEYRING_SERVICE}/{KEYRING_USER})")
    args = parser.parse_args(argv)
    key = Fernet.generate_key().decode("ascii")
    try:
        if args.keyring:
            store_in_keyring(key)
            print(f"stored a new key in the OS keyring ({KEYRING_SERVICE}/{KEYRING_USER}).",
                  file=sys.stderr)
            return 0
    except CostflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"# a new key: export it as {KEY_ENV} and keep a copy somewhere safe (without it "
          "the local secrets cannot be read)", file=sys.stderr)
    print(key)
    return 0


def store_in_keyring(key: str) -> None:
    """Store ``key`` in the OS keyring; refuse if one is there or no keyring works."""
    if keyring_key():
        raise CostflowError(f"the OS keyring already holds a key ({KEYRING_SERVICE}/"
                            f"{KEYRING_USER}); remove it first if you really mean to replace "
                            "it (the secrets written with it would become unreadable).")
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, KEYRING_USER, key)
        stored = keyring.get_password(KEYRING_SERVICE, KEYRING_USER)
    except Exception as exc:
        raise CostflowError(f"no working OS keyring ({type(exc).__name__}): export the key "
                            f"as {KEY_ENV} instead (python -m costflow.secrets keygen).") from None
    if stored != key:
        raise CostflowError(f"the OS keyring did not keep the key: export it as {KEY_ENV} "
                            "instead (python -m costflow.secrets keygen).")


if __name__ == "__main__":
    sys.exit(main())
