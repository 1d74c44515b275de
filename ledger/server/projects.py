"""Projects: the tenants one server hosts, read from a TOML file (`ledger serve --projects FILE`).

A project is one identity domain (apps that share people are several upload keys of one
project) with its own secret key and its own database; projects share nothing. The file:

    [projects.web]
    api_keys = ["web-key-1"]
    secret_key = "web-secret-of-32-characters-xyz"
    db = "sqlite:///web.db"

`--api-key/--secret-key/--db` is the same thing for one project, named `default`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ledger.server.credentials import Credentials, ServerConfigError, check_secret_strength
from ledger.store.backends import BadDatabaseURL, backend_for

#: Project names become NATS subject and stream names: keep them to letters, digits, - and _.
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_PROJECT = "default"


@dataclass(frozen=True)
class ProjectConfig:
    """One project as configured: its name, who may upload and read, and its database URL."""

    name: str
    credentials: Credentials
    db: str


def one_project(api_keys: Iterable[str], secret_key: str, db: str) -> list[ProjectConfig]:
    """The `--api-key/--secret-key/--db` shorthand: a single project named `default`."""
    return [ProjectConfig(DEFAULT_PROJECT, Credentials.configured(api_keys, secret_key), db)]


def load_projects(path: str) -> list[ProjectConfig]:
    """The projects of a TOML file, checked; raises ServerConfigError saying what is wrong."""
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except OSError as error:
        raise ServerConfigError(f"cannot read {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ServerConfigError(f"{path} is not valid TOML: {error}") from None
    return parse_projects(document, path)


def parse_projects(document: dict[str, Any], where: str = "projects") -> list[ProjectConfig]:
    """The projects of an already parsed TOML document (see `load_projects`)."""
    table = document.get("projects")
    if not isinstance(table, dict) or not table:
        raise ServerConfigError(f"{where}: no [projects.NAME] table")
    configs = [_project(name, entry, where) for name, entry in table.items()]
    owner: dict[str, str] = {}
    for config in configs:
        for key in config.credentials.api_keys:
            if key in owner:
                raise ServerConfigError(f"{where}: API key {key!r} is in projects {owner[key]!r} and {config.name!r}; "
                                        "apps that share people are several keys of one project")
            owner[key] = config.name
    check_apart(configs, where)
    return configs


def check_apart(configs: list[ProjectConfig], where: str = "projects") -> None:
    """Projects share nothing: refuse two on one database, or a secret key holding another project's API key.

    Two projects on one database would read each other's people; an API key ships inside
    client apps, so a secret key that holds any project's API key is public.
    """
    every_key = [key for config in configs for key in config.credentials.api_keys]
    for config in configs:
        try:
            check_secret_strength(config.credentials.secret_key, every_key)
        except ServerConfigError as error:
            raise ServerConfigError(f"{where}: [projects.{config.name}]: {error}") from None
    user: dict[str, str] = {}
    for config in configs:
        database = database_identity(config.db)
        if database is not None and database in user:
            raise ServerConfigError(f"{where}: projects {user[database]!r} and {config.name!r} use the same database"
                                    f" ({database}): each project needs its own database or schema")
        if database is not None:
            user[database] = config.name


def database_identity(url: str) -> str | None:
    """What a database URL points at, however it is spelled: an SQLite file's resolved path, or a
    PostgreSQL server, database and schema; None for a private scratch database (`sqlite://`)."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        return None  # opening it says what is wrong
    try:
        return backend_for(parsed).location.identity(parsed)
    except BadDatabaseURL:
        return None  # opening it says what is wrong


def _project(name: str, entry: Any, where: str) -> ProjectConfig:
    if not _NAME.match(name):
        raise ServerConfigError(f"{where}: project name {name!r}: use 1-64 letters, digits, - or _")
    if not isinstance(entry, dict):
        raise ServerConfigError(f"{where}: [projects.{name}] must be a table")
    unknown = set(entry) - {"api_keys", "secret_key", "db"}
    if unknown:
        raise ServerConfigError(f"{where}: [projects.{name}]: unknown setting {sorted(unknown)[0]!r}")
    api_keys, secret_key, db = entry.get("api_keys"), entry.get("secret_key"), entry.get("db")
    if not isinstance(api_keys, list) or not all(isinstance(key, str) for key in api_keys):
        raise ServerConfigError(f"{where}: [projects.{name}]: api_keys must be a list of strings")
    if not isinstance(secret_key, str) or not isinstance(db, str) or not db:
        raise ServerConfigError(f"{where}: [projects.{name}]: secret_key and db must be strings")
    try:
        credentials = Credentials.configured(api_keys, secret_key)
    except ServerConfigError as error:
        raise ServerConfigError(f"{where}: [projects.{name}]: {error}") from None
    return ProjectConfig(name, credentials, db)
