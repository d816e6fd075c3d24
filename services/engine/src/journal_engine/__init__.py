"""A publisher stub standing in for the trading engine: it writes journal events with plain SQL."""

__all__: list[str] = []
