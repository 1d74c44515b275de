"""The applied stream position: a fact the writer stores in the same transaction as each request.

Its aggregate ID names the stream and its version IS the stream sequence, so a request
applied twice would collide on the store's unique (originator_id, version) key, and the
last one stored says where the writer resumes. Projections ignore it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic

_NAMESPACE = UUID("6f1c1c47-8e55-4a43-9a37-5f7a7f0b1a0e")


class Applied(Aggregate.Event):
    """Stream message `originator_version` of the stream named by the originator ID was applied."""

    TOPIC = "Buffer.Applied"


register_topic(Applied.TOPIC, Applied)


def position_id(stream: str) -> UUID:
    return uuid5(_NAMESPACE, "applied:" + stream)


def applied(stream: str, sequence: int, server_time_ms: int) -> Applied:
    return Applied(originator_id=position_id(stream), originator_version=sequence,
                   timestamp=datetime.fromtimestamp(server_time_ms / 1000, timezone.utc))
