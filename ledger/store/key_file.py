"""The ledger's secret: a key file outside the database, checked against a value stored inside it.

A stolen database alone must not map guessed emails to rows, so the 32-byte secret that keys
the stored IDs (`ledger.domain.keys`) never enters the database. Where it lives:

- SQLite: `<database file>.key`, beside the database, mode 0600, created with the ledger;
- PostgreSQL: the file named by `key_file=` (`IdentityLedger(..., key_file=)`) or `LEDGER_KEY_FILE`,
  else `$XDG_CONFIG_HOME/identity-ledger/keys/<host>-<port>-<database>-<schema>.key`
  (`~/.config/...` without XDG_CONFIG_HOME).

The database holds only a check value (an HMAC of a constant) in `ledger_settings`, so opening a
ledger with a missing or wrong key file fails (`KeyFileMissing`, `WrongKeyFile`) instead of
silently keying new rows differently. A ledger written before keys existed (data, no check
value) keeps its unkeyed IDs. The key file must be kept and backed up with the ledger: without
it no device ID or user ID can be found again.
"""

from __future__ import annotations

import os

from ledger.domain.keys import SECRET_BYTES, UNKEYED, Keys
from ledger.errors import KeyFileMissing, WrongKeyFile
from ledger.store import settings
from ledger.store.database import Store


def key_path(store: Store, key_file: str | None) -> str:
    """Where this ledger's key file is (see the module's docstring)."""
    chosen = key_file or os.environ.get("LEDGER_KEY_FILE")
    if chosen:
        return chosen
    return store.backend.location.key_path(store)


def open_keys(store: Store, has_data: bool, key_file: str | None) -> Keys:
    """This ledger's key derivation; creates the secret for a new ledger. Call under `setup_lock`, once
    the writer has created `ledger_settings`."""
    path = key_path(store, key_file)
    with store.engine.begin() as connection:
        check = settings.read(connection, settings.KEY_CHECK)
        if check is None and has_data:
            return UNKEYED  # written before keys existed: its stored IDs are uuid5 of the IDs
        if check is None:
            keys = Keys(_read(path) if os.path.exists(path) else _create(path))
            settings.store(connection, settings.KEY_CHECK, keys.check())
            return keys
    if not os.path.exists(path):
        raise KeyFileMissing(f"this ledger's key file {path} is missing: restore it from the ledger's backup "
                             "(without it no device ID or user ID can be found; set LEDGER_KEY_FILE if it moved)")
    keys = Keys(_read(path))
    if keys.check() != check:
        raise WrongKeyFile(f"the key file {path} is not this ledger's: use the one created with it")
    return keys


def new_keys(store: Store, key_file: str | None) -> Keys:
    """A secret for a ledger that has none yet (`ledger rekey`): a key file left by an interrupted
    rekey is used again; otherwise one is created."""
    path = key_path(store, key_file)
    return Keys(_read(path) if os.path.exists(path) else _create(path))


def _read(path: str) -> bytes:
    with open(path, encoding="ascii") as file:
        text = file.read().strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) != SECRET_BYTES:
        raise WrongKeyFile(f"the key file {path} does not hold a ledger secret ({SECRET_BYTES * 2} hex digits)")
    return secret


def _create(path: str) -> bytes:
    """A new secret, written once (never over an existing file), readable by its owner only."""
    secret = os.urandom(SECRET_BYTES)
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(secret.hex() + "\n")
        file.flush()
        os.fsync(file.fileno())
    return secret
