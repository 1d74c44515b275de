"""The people a ledger holds, told apart by what they are, not by their amplitude IDs (which a replay renumbers)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ledger import IdentityLedger
from ledger.domain.calls import device_id_for_user


def people(lg: IdentityLedger, device_ids: Iterable[str], user_ids: Iterable[str]) -> dict[str, Any]:
    """Each known device's and user ID's person: user ID, devices, merges, properties, timeline."""
    device_ids = [*device_ids, *(device_id_for_user(user_id) for user_id in user_ids)]
    found = {f"device {device_id}": lg.resolve(device_id=device_id) for device_id in device_ids}
    found |= {f"user {user_id}": lg.resolve(user_id=user_id) for user_id in user_ids}
    described = {}
    for name, identity in found.items():
        if identity is None:
            described[name] = None
            continue
        timeline = [(event.event_type, event.device_id, event.user_id, event.insert_id, event.time, event.server_time,
                     event.event_properties, event.user_properties) for event in lg.timeline(identity.amplitude_id)]
        described[name] = (identity.user_id, sorted(identity.device_ids), len(identity.merged_amplitude_ids),
                           identity.user_properties, timeline, identity.groups, identity.global_user_id,
                           identity.mapped_user_ids)
    return described


def groups(lg: IdentityLedger, names: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """Each group's properties and its members' user IDs (amplitude IDs are the ledger's own)."""
    found: dict[tuple[str, str], Any] = {}
    for group_type, group_value in names:
        group = lg.group(group_type, group_value)
        if group is None:
            found[group_type, group_value] = None
            continue
        members = [lg.identity(amplitude_id) for amplitude_id in group.amplitude_ids]
        found[group_type, group_value] = (group.properties, sorted(
            repr(None if member is None else (member.user_id, sorted(member.device_ids))) for member in members))
    return found


def mappings(lg: IdentityLedger) -> list[tuple[str, str, bool, str, int]]:
    return [(entry.user_id, entry.global_user_id, entry.unmap, entry.requester, entry.server_time)
            for entry in lg.mappings()]


def corrections(lg: IdentityLedger) -> list[tuple[str, str, str, int]]:
    return [(correction.user_id, correction.reason, correction.requester, correction.server_time)
            for correction in lg.corrections()]
