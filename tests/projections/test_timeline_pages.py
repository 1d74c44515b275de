"""Every page of a whole-person timeline is the slice of the whole timeline it names.

A page is read per stream from the log's index and checked against its bounds afterwards
(on PostgreSQL: each stream's first rows in one query, a stream the bounds cut into walked
again in chunks); whatever the reading position, cursor, size and order, the page must be
exactly what filtering the person's whole timeline gives.
"""

from __future__ import annotations

from ledger import IdentityLedger
from tests.helpers import event


def test_every_page_at_every_reading_is_a_slice_of_the_whole_timeline(lg: IdentityLedger) -> None:
    # Two devices that become one person by a merge, their events interleaved with a stranger's.
    lg.ingest([event("device-P", "user-P", insert_id="p0")])
    lg.ingest([event("device-Q", insert_id="q0")])
    for index in range(1, 13):
        lg.ingest([event("device-P", insert_id=f"p{index}"), event("device-S", insert_id=f"s{index}"),
                   event("device-Q", insert_id=f"q{index}")])
    lg.ingest([event("device-Q", "user-P", insert_id="merge")])
    for index in range(13, 20):
        lg.ingest([event("device-Q", insert_id=f"q{index}"), event("device-S", insert_id=f"s{index}")])
    person = lg.resolve(device_id="device-Q")
    assert person is not None and person.merged_amplitude_ids
    checked = 0
    for reading in range(0, lg.position + 1, 7):
        with lg.as_of(reading) as past:
            whole = past.timeline(person.amplitude_id)
            cursors = [0, *(e.position for e in whole[::5]), reading]
            for after in cursors:
                for limit in (1, 3, 40):
                    for newest_first in (False, True):
                        order = whole[::-1] if newest_first else whole
                        expected = [e for e in order if e.position > after][:limit]
                        page = past.timeline(person.amplitude_id, after=after, limit=limit, newest_first=newest_first)
                        assert page == expected, (reading, after, limit, newest_first)
                        checked += bool(expected)
    assert checked > 100
