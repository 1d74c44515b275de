"""The live `resolve`, answered from the write side's cache: no SQL for a known device or user.

It is a second path to the answer `projections.queries.ReadModel.resolve` gives from the
read side, kept because resolving is the hot read (a dictionary lookup instead of five
queries). It must give the same answer for every history: `tests/projections/test_read_model.py`
compares the two over random histories of calls, merges, corrections, deletion jobs and
mappings, from the writing process and from another one.
"""

from __future__ import annotations

from ledger.domain.model import AmplitudeIdentity
from ledger.store.aggregate_cache import AggregateCache
from projections.models import Identity


def resolve_from_cache(cache: AggregateCache, device_id: str | None, user_id: str | None) -> Identity | None:
    """Whom `device_id` points to or `user_id` is bound to, from aggregates the cache holds (or loads)."""
    if device_id is not None:
        device = cache.get(("device", device_id))
        amplitude_id = None if device is None else device.pointer
    else:
        user = cache.get(("user", user_id))
        amplitude_id = None if user is None or user.retracted else user.amplitude_id
    if amplitude_id is None:
        return None
    identity = cache.get(("identity", amplitude_id))
    if identity.forgotten:  # a shared device still points to a forgotten person
        return None
    mapping = None if identity.user_id is None else cache.get(("mapping", identity.user_id))
    return Identity(
        amplitude_id=identity.amplitude_id,
        user_id=identity.user_id,
        device_ids=list(identity.device_ids),
        merged_amplitude_ids=list(identity.merged_amplitude_ids),
        user_properties=dict(identity.user_properties),
        groups=_groups_of(cache, identity),
        global_user_id=None if mapping is None else mapping.global_user_id,
        mapped_user_ids=[] if mapping is None else sorted(mapping.mapped_user_ids),
    )


def _groups_of(cache: AggregateCache, identity: AmplitudeIdentity) -> dict[str, list[str]]:
    """The groups a person's amplitude IDs joined, as `projections.groups.groups_of` answers them."""
    if not identity.groups and not identity.merged_amplitude_ids:
        return {}
    found: dict[str, set[str]] = {}
    merged = (cache.get(("identity", amplitude_id)) for amplitude_id in identity.merged_amplitude_ids)
    for each in (identity, *merged):
        for group_type, names in each.groups.items():
            found.setdefault(group_type, set()).update(names)
    return {group_type: sorted(found[group_type]) for group_type in sorted(found)}
