"""The read side's tables (SQLAlchemy Core). Every row is derived from the notification log."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

#: How far each projection has applied the log, written in the same transaction as its rows.
positions = sa.Table(
    "ledger_projection_positions",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


def _first(column: str, column_type: sa.types.TypeEngine[Any]) -> sa.Column[Any]:
    """The value an updated column had when its row was inserted: its history starts after it."""
    return sa.Column(f"first_{column}", column_type, nullable=False, info={"kept_for": column})


def _created() -> sa.Column[int]:
    """The position of the fact that inserted the row: a past view has it from then on."""
    return sa.Column("created", sa.BigInteger, nullable=False, info={"kept_for": "history"})


devices = sa.Table(
    "ledger_devices",
    metadata,
    sa.Column("device_id", sa.String(1024), primary_key=True),
    sa.Column("pointer", sa.BigInteger, nullable=False),
    _first("pointer", sa.BigInteger()),
    _created(),
)

device_identities = sa.Table(
    "ledger_device_identities",
    metadata,
    sa.Column("amplitude_id", sa.BigInteger, primary_key=True),
    sa.Column("device_id", sa.String(1024), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)

identities = sa.Table(
    "ledger_identities",
    metadata,
    sa.Column("amplitude_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.String(1024), unique=True),
    sa.Column("merged_into", sa.BigInteger),
    sa.Column("user_properties", sa.Text, nullable=False),
    _first("user_properties", sa.Text()),  # user_id and merged_into start NULL
    _created(),
)

merges = sa.Table(
    "ledger_merges",
    metadata,
    sa.Column("amplitude_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("merged_amplitude_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("merge_event_time", sa.BigInteger, nullable=False),
    sa.Column("merge_server_time", sa.BigInteger, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
)

#: Where 0.1.0's tracked events are (they sit on device streams). Tracked events since then are
#: on their amplitude ID's own stream in the log, whose index is the timeline: nothing to project.
legacy_timeline = sa.Table(
    "ledger_legacy_timeline",
    metadata,
    sa.Column("amplitude_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
)

audit = sa.Table(
    "ledger_audit",
    metadata,
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    # One event can state two facts (a new amplitude ID is also linked to its device).
    sa.Column("seq", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("amplitude_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("merged_amplitude_id", sa.BigInteger),
    sa.Column("user_id", sa.String(1024)),
    sa.Column("device_id", sa.String(1024), nullable=False, index=True),
    sa.Column("event_time", sa.BigInteger, nullable=False),
    sa.Column("server_time", sa.BigInteger, nullable=False),
    sa.Column("insert_id", sa.String(1024)),
    # The correction that recorded the fact (named by the user ID it retracted); NULL for a call's facts.
    sa.Column("correction", sa.String(1024)),
)
sa.Index("ledger_audit_user_id", audit.c.user_id)

#: Each retraction of a user ID (docs/corrections.md): who, why, when, what it changed.
corrections = sa.Table(
    "ledger_corrections",
    metadata,
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.String(1024), nullable=False, unique=True),
    sa.Column("amplitude_id", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("requester", sa.String(1024), nullable=False),
    sa.Column("server_time", sa.BigInteger, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
)

#: Amplitude IDs a correction retired: their events now count for the IDs in `ledger_reattributed`.
retired = sa.Table(
    "ledger_retired",
    metadata,
    sa.Column("amplitude_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("server_time", sa.BigInteger, nullable=False),
    sa.Column("correction", sa.String(1024), nullable=False),
    #: The position of the fact that retired it (a past view knows it from then on).
    sa.Column("position", sa.BigInteger, nullable=False),
)

#: Calls (by log position) a correction attributed to another amplitude ID than their stream's.
reattributed = sa.Table(
    "ledger_reattributed",
    metadata,
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("amplitude_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("tracked", sa.Boolean, nullable=False),
    _first("amplitude_id", sa.BigInteger()),
    _created(),
)

#: Amplitude IDs erased by a deletion job (`DeletionJob.Ran`): their people answer as forgotten.
forgotten = sa.Table(
    "ledger_forgotten",
    metadata,
    sa.Column("amplitude_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("job_day", sa.String(10), nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
)

#: Each group property update (Amplitude's Group Identify API), with the properties it left:
#: a group's properties are its last row; an event's are the last row before its position.
group_properties = sa.Table(
    "ledger_group_properties",
    metadata,
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("group_type", sa.String(1024), nullable=False),
    sa.Column("group_value", sa.String(1024), nullable=False),
    sa.Column("group_properties", sa.Text, nullable=False),
    sa.Column("server_time", sa.BigInteger, nullable=False),
)
sa.Index("ledger_group_properties_group", group_properties.c.group_type, group_properties.c.group_value)

#: Which amplitude IDs joined which group, and by which call (membership is never ended).
group_members = sa.Table(
    "ledger_group_members",
    metadata,
    sa.Column("group_type", sa.String(1024), primary_key=True),
    sa.Column("group_value", sa.String(1024), primary_key=True),
    sa.Column("amplitude_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("server_time", sa.BigInteger, nullable=False),
)
sa.Index("ledger_group_members_amplitude_id", group_members.c.amplitude_id)

#: Each mapping and unmapping of a user ID onto a global user ID (the User Mapping API), in
#: ledger order: a user ID's mapping is its last row, unless that row is an unmapping.
user_mappings = sa.Table(
    "ledger_user_mappings",
    metadata,
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.String(1024), nullable=False, index=True),
    sa.Column("global_user_id", sa.String(1024), nullable=False, index=True),
    sa.Column("unmap", sa.Boolean, nullable=False),
    sa.Column("requester", sa.String(1024), nullable=False),
    sa.Column("server_time", sa.BigInteger, nullable=False),
)

# -- history: every value an update sets, valid over [valid_from, valid_to) --------------
# (docs/architecture.md, "Time travel"). Each column the projector updates keeps the values
# its updates set in a table of its own, keyed like the column's table plus `valid_from`, the
# position that set the value; `valid_to` is the position that replaced it, NULL for the
# present. The value a row was inserted with stays in the row (`first_<column>`, or NULL where
# the column starts NULL), valid from `created` until the first history row: most rows are
# never updated, so most facts write no history at all. A table's rows as they stood at
# position p are those created at or before p, each column its history row valid at p or,
# without one, its first value.


def _history(table: sa.Table, column: str, key: str) -> sa.Table:
    history = sa.Table(
        f"{table.name}_{column}_history",
        metadata,
        sa.Column(key, table.c[key].type, primary_key=True, autoincrement=False),
        sa.Column("valid_from", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column(column, table.c[column].type),
        sa.Column("valid_to", sa.BigInteger),
        info={"of": (table, key), "column": column},
        sqlite_with_rowid=False,  # clustered by (key, valid_from): one B-tree to write, not two
    )
    return history


device_pointer_history = _history(devices, "pointer", "device_id")
user_id_history = _history(identities, "user_id", "amplitude_id")
#: A user ID's bindings, by user ID then position (who it named at p).
sa.Index("ledger_identities_user_id_history_user_id", user_id_history.c.user_id, user_id_history.c.valid_from)
merged_into_history = _history(identities, "merged_into", "amplitude_id")
user_properties_history = _history(identities, "user_properties", "amplitude_id")
reattributed_history = _history(reattributed, "amplitude_id", "position")
HISTORY_TABLES = (device_pointer_history, user_id_history, merged_into_history, user_properties_history,
                  reattributed_history)

#: The tables a rebuild drops and fills again, in a deterministic order for comparisons.
PROJECTION_TABLES = (devices, device_identities, identities, merges, legacy_timeline, audit, forgotten, corrections,
                     retired, reattributed, group_properties, group_members, user_mappings, *HISTORY_TABLES)
#: The shape of the tables above; a database holding another is rebuilt when opened.
SCHEMA_VERSION = 6
#: Tables of earlier shapes, dropped on that rebuild.
RETIRED_TABLES = ("ledger_timeline",)
