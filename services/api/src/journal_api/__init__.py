"""The trading engine's event journal and its live stream.

- :mod:`journal_api.journal`: the events table, repository, redaction, migrations and frames;
- :mod:`journal_api.stream`: the server (``/ws``, ``/console``, probes, ``/metrics``);
- :mod:`journal_api.client`: the Python client and ``journal tail``;
- :mod:`journal_api.cli`: the ``journal`` command.
"""

__all__: list[str] = []
