"""The rows of groups and user mapping facts (docs/rules.md): each fact is one appended row."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections import tables as t
from projections.writes import Fields, to_json

if TYPE_CHECKING:
    from projections.projector import Handler, Projector


def groups_joined(rows: Projector, position: int, fields: Fields) -> None:
    for group_type, names in fields["groups"].items():
        for group_value in names:
            rows.insert(t.group_members, (group_type, group_value, fields["amplitude_id"], position,
                                           fields["server_time"]))


def group_properties_updated(rows: Projector, position: int, fields: Fields) -> None:
    rows.insert(t.group_properties, (position, fields["group_type"], fields["group_value"],
                                      to_json(fields["group_properties"]), fields["server_time"]))


def mapped(rows: Projector, position: int, fields: Fields, unmap: bool = False) -> None:
    rows.insert(t.user_mappings, (position, fields["user_id"], fields["global_user_id"], unmap,
                                   fields["requester"], fields["server_time"]))


def unmapped(rows: Projector, position: int, fields: Fields) -> None:
    mapped(rows, position, fields, unmap=True)


HANDLERS: dict[str, Handler] = {
    "Identity.GroupsJoined": groups_joined,
    "Group.PropertiesUpdated": group_properties_updated,
    "UserMapping.Mapped": mapped,
    "UserMapping.Unmapped": unmapped,
}
