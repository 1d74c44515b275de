"""User mapping (Amplitude's User Mapping API) on the writer's path: validate, apply, ONE transaction.

A request's mappings are applied in order to the `UserMapping` aggregates of the user IDs they
name, and stored like any request's facts (`WriteContext.commit`: one transaction with the read
side's rows), so a mapping is audited, replayed by `rebuild` and `as_of`, and undone only by
an unmapping. One refused item fails the whole request, naming its index; nothing is stored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import msgspec

from ledger.domain.mappings import MAX_MAPPINGS, MappingIn, MappingRefused, UserMapping, mapping_problem
from ledger.errors import InvalidRequest
from ledger.store.unit_of_work import UnitOfWork
from ledger.write_context import WriteContext, in_fresh_units

MAX_REQUESTER = 1024


class MappingReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one request did: mappings made, unmade, and items that changed nothing (already so)."""

    mapped: int
    unmapped: int
    unchanged: int
    position: int


def refused(error: str, fields: dict[str, list[int]]) -> InvalidRequest:
    """Amplitude's per-item 400: each field names the indices of the mappings at fault."""
    return InvalidRequest(400, {"code": 400, "error": error, "mappings_with_invalid_fields": fields})


def accept_mappings(items: Iterable[Any]) -> list[MappingIn]:
    """Validate a whole request of mappings, or raise InvalidRequest naming every bad index per field."""
    items = list(items)
    if len(items) > MAX_MAPPINGS:
        raise InvalidRequest.payload_too_large()
    bad: dict[str, list[int]] = defaultdict(list)
    accepted: list[MappingIn] = []
    for index, item in enumerate(items):
        found = mapping_problem(item)
        if isinstance(found, tuple):
            bad[found[0]].append(index)
        else:
            accepted.append(found)
    if bad:
        raise refused("Invalid mappings", dict(bad))
    return accepted


def check_requester(requester: Any) -> str:
    if not isinstance(requester, str) or not requester.strip() or "\x00" in requester \
            or len(requester) > MAX_REQUESTER:
        raise InvalidRequest.bad_body("Invalid requester: a non-empty string of at most 1024 characters without NUL")
    return requester


class Mapper:
    """Maps and unmaps user IDs for one ledger, through its write context's transaction."""

    def __init__(self, context: WriteContext) -> None:
        self._context = context

    def apply(self, items: Iterable[Any], requester: str, server_time: int) -> MappingReport:
        """Apply a request of mappings in order; the caller holds the ledger's write lock."""
        mappings = accept_mappings(items)
        check_requester(requester)

        def attempt(unit: UnitOfWork) -> MappingReport:
            self._context.follower.sync()
            done = {"mapped": 0, "unmapped": 0, "unchanged": 0}
            for index, mapping in enumerate(mappings):
                try:
                    done[self._apply_one(unit, mapping, requester, server_time)] += 1
                except MappingRefused as error:
                    raise refused(f"Mapping refused: {error}", {error.field: [index]}) from None
            self._context.commit(unit, lambda tx: None)
            return MappingReport(**done, position=self._context.follower.seen)

        return in_fresh_units(self._context.cache, server_time, attempt)

    def _apply_one(self, unit: UnitOfWork, mapping: MappingIn, requester: str, server_time: int) -> str:
        source = unit.mapping(mapping.user_id)
        if mapping.unmap:
            if source is None or source.global_user_id is None:
                return "unchanged"
            target = unit.mapping(source.global_user_id)
            assert target is not None, "a global user ID's stream exists while something is mapped onto it"
            source.unmap(target, requester, server_time)
            return "unmapped"
        assert mapping.global_user_id is not None
        source = source or self._start(unit, mapping.user_id, server_time)
        target = unit.mapping(mapping.global_user_id) or self._start(unit, mapping.global_user_id, server_time)
        return "mapped" if source.map_onto(target, requester, server_time) else "unchanged"

    @staticmethod
    def _start(unit: UnitOfWork, user_id: str, server_time: int) -> UserMapping:
        mapping = UserMapping.start(user_id, unit.keys.mapping(user_id), server_time)
        unit.add(mapping)
        return mapping
