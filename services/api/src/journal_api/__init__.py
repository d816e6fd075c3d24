"""The trading engine's event journal: repository, migrations, redaction and the live stream server."""

__all__: list[str] = []
