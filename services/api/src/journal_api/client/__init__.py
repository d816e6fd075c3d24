"""Follow the journal from Python: ``async for event in subscribe(url, token=…)`` reconnects and resumes by itself
(docs/30_WS_PROTOCOL.md#python-client). ``journal tail`` (:mod:`journal_api.client.tail`) is built on it.

Needs only ``websockets`` and ``orjson``: nothing here touches the database or imports the server.
"""

from journal_api.client.subscriber import (
    ClientError,
    CursorAheadError,
    CursorFile,
    CursorRejectedError,
    EpochMismatchError,
    Event,
    OnCursor,
    OnRetry,
    Subscriber,
    SubscriptionRefusedError,
    TokenProvider,
    subscribe,
)

__all__ = [
    "ClientError",
    "CursorAheadError",
    "CursorFile",
    "CursorRejectedError",
    "EpochMismatchError",
    "Event",
    "OnCursor",
    "OnRetry",
    "Subscriber",
    "SubscriptionRefusedError",
    "TokenProvider",
    "subscribe",
]
