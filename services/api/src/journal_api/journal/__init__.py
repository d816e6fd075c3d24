"""The journal itself: the events table's models, the repository that reads and appends, redaction, migrations,
the frames the stream sends, and an embedded Postgres for development (docs/20_EVENT_JOURNAL.md)."""
