"""The durable write outbox (``client.outbox``): see :mod:`._outbox` and ``docs/writes.md``.

=============  ===========================================================================
module         what it holds
=============  ===========================================================================
``_model``     entries, status, drain reports, the store protocol, the errors
``_sqlite``    the embedded store: a SQLite file in WAL mode
``_redis``     the fleet store: a Redis Stream with a consumer group
``_replay``    replaying one entry exactly once (sans-I/O: yields requests)
``_outbox``    ``Outbox`` / ``AsyncOutbox``, the drain, queue-when-unavailable
=============  ===========================================================================
"""

from ._model import (
    DrainReport,
    OutboxEntry,
    OutboxError,
    OutboxStatus,
    OutboxUnavailableError,
    WriteQueuedError,
)
from ._outbox import AsyncOutbox, Outbox, attach_async_outbox, attach_outbox, open_store

__all__ = [
    "AsyncOutbox",
    "DrainReport",
    "Outbox",
    "OutboxEntry",
    "OutboxError",
    "OutboxStatus",
    "OutboxUnavailableError",
    "WriteQueuedError",
    "attach_async_outbox",
    "attach_outbox",
    "open_store",
]
