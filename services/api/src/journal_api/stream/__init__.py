"""The live stream server: the app and its settings, the hub on one LISTEN connection, sessions, the journal.v1
protocol, the transport, metrics and logs (docs/30_WS_PROTOCOL.md, docs/50_OPERATIONS.md)."""
