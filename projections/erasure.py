"""A deletion job's effect on the projection tables, in the job's own write transaction.

The log rows of the forgotten people are already erased or rewritten (`ledger.store.erasure`);
these deletes bring every table (corrections' included) to exactly what a rebuild from the rewritten log gives
(checked by the tests' incremental == rebuild comparisons): no row of the people is left but
the audit rows of pointer moves on devices they shared with someone else, which the rewritten
log still holds without their user ID and insert_id.
"""

from __future__ import annotations

from typing import Any

from projections import tables as t
from projections.runner import WriteTransaction


def _in(values: list[Any]) -> str:
    return ", ".join("?" * len(values))


def attributions(tx: WriteTransaction, positions: list[int]) -> dict[int, int]:
    """The amplitude ID each of these calls (positions) is attributed to now, for those a correction
    re-attributed: what the erasure asks before deleting a retired amplitude ID's calls."""
    rows = tx.query(f"SELECT position, amplitude_id FROM {t.reattributed.name} WHERE position IN ({_in(positions)})",
                    positions)
    return {int(row[0]): int(row[1]) for row in rows}


def erase_rows(tx: WriteTransaction, amplitude_ids: list[int], devices: list[str], redacted: list[int],
               unbound: list[int]) -> None:
    """Delete the rows of these amplitude IDs and devices; keep the audit rows of the rewritten facts,
    without the IDs they lost (`redacted`: the user ID and insert_id; `unbound`: the device ID and insert_id)."""
    if amplitude_ids:
        ids = _in(amplitude_ids)
        # Their user IDs' mappings, either way round (read from their identities' rows, deleted next).
        bound = f"SELECT user_id FROM {t.identities.name} WHERE amplitude_id IN ({ids}) AND user_id IS NOT NULL"
        tx.execute(f"DELETE FROM {t.user_mappings.name} WHERE user_id IN ({bound}) OR global_user_id IN ({bound})",
                   [*amplitude_ids, *amplitude_ids])
        # Their past goes with them: a forgotten person is absent at every position.
        moved = t.reattributed_history
        tx.execute(f"DELETE FROM {moved.name} WHERE position IN (SELECT position FROM {t.reattributed.name} "
                   f"WHERE amplitude_id IN ({ids}))", amplitude_ids)
        for history in (t.user_id_history, t.merged_into_history, t.user_properties_history):
            tx.execute(f"DELETE FROM {history.name} WHERE amplitude_id IN ({ids})", amplitude_ids)
        for table in (t.group_members, t.identities, t.device_identities, t.merges, t.legacy_timeline, t.retired,
                      t.reattributed):
            tx.execute(f"DELETE FROM {table.name} WHERE amplitude_id IN ({ids})", amplitude_ids)
        # A correction's own row stays: it names the retracted user ID, not the person (its fact stays too).
        kept = [*redacted, *unbound]
        keep = f" AND position NOT IN ({_in(kept)})" if kept else ""
        tx.execute(f"DELETE FROM {t.audit.name} WHERE amplitude_id IN ({ids}) AND kind <> 'retracted'{keep}",
                   [*amplitude_ids, *kept])
    if redacted:
        tx.execute(f"UPDATE {t.audit.name} SET user_id = NULL, insert_id = NULL WHERE position IN ({_in(redacted)})",
                   redacted)
    if unbound:
        tx.execute(f"UPDATE {t.audit.name} SET device_id = '', insert_id = NULL WHERE position IN ({_in(unbound)})",
                   unbound)
    if devices:  # with the audit rows of earlier forgotten people who shared them
        for table in (t.devices, t.device_pointer_history, t.audit):
            tx.execute(f"DELETE FROM {table.name} WHERE device_id IN ({_in(devices)})", devices)
