"""A bare reader for the writer-cost rows (``writer_cost.py``): in a process of its own, it reads every new row of
one table every 10 ms (the hub's pace under load) and decodes it, with no server, no frames and no client.

What writers lose to it is what reading the rows back costs on this machine, whatever design delivers them: the
floor under "current with its server and 1 client" that no trigger or server change can remove.

    python bare_reader.py DSN TABLE    # prints "reading" once it reads; runs until terminated
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg

PACE_S = 0.01
_PLAIN = (
    "SELECT id, ts, type, level, public_safe, symbol, trade_id, payload::text FROM {table} "
    "WHERE id > $1 ORDER BY id LIMIT 1000"
)
_JOURNAL = "SELECT * FROM journal_read($1, 1000)"  # the hub's own read, horizon and all


async def main(dsn: str, table: str) -> None:
    conn = await asyncpg.connect(dsn)
    head = await conn.fetchval(f"SELECT coalesce(max(id), 0) FROM {table}")  # noqa: S608 - the bench's own table names
    sql = _JOURNAL if table == "events" else _PLAIN.format(table=table)
    print("reading", flush=True)
    while True:
        ids = [row["id"] for row in await conn.fetch(sql, head) if row["id"] is not None]
        if ids:
            head = ids[-1]
        await asyncio.sleep(PACE_S)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
