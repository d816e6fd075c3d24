"""``journal keys …`` and ``journal tokens …``: API keys and revoked JWTs in the journal's database
(docs/60_ACCESS.md). They talk to ``DATABASE_URL``, not to a server; revocations reach every server through the
control channel.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import asyncpg

from journal_api.access.grants import Grant
from journal_api.access.keys import create_key, list_keys, list_revoked_jtis, revoke_jti, revoke_key
from journal_api.journal.models import LEVELS

__all__ = ["AccessUsageError", "add_commands", "run"]

_DURATION = re.compile(r"([0-9]+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_T = TypeVar("_T")


class AccessUsageError(Exception):
    """The command cannot run as called; the message says what to change."""


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``keys`` and ``tokens`` to the ``journal`` command."""
    keys = commands.add_parser("keys", help="API keys: create, list, revoke (DATABASE_URL)")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key; prints it once, alone on the last line")
    create.add_argument("name", help="1 to 64 characters of A-Z a-z 0-9 . _ -")
    for option in ("channels", "types", "symbols", "levels"):
        create.add_argument(f"--{option}", action="append", help="comma-separated; may be repeated")
    create.add_argument("--metrics", action="store_true", help="may read /metrics")
    create.add_argument("--expires-in", help="e.g. 90m, 12h, 30d (default: never)")
    listing = actions.add_parser("list", help="names, grants, created, last used, expiry; never a secret")
    listing.add_argument("--all", action="store_true", help="revoked keys too")
    revoke = actions.add_parser("revoke", help="refuse the key from now on and close its live sessions")
    revoke.add_argument("name")

    tokens = commands.add_parser("tokens", help="revoke JWTs by jti (DATABASE_URL)")
    token_actions = tokens.add_subparsers(dest="action", required=True)
    revoke_token = token_actions.add_parser("revoke", help="refuse JWTs with this jti and close their sessions")
    revoke_token.add_argument("jti")
    token_actions.add_parser("list", help="the revoked jti values")


def run(args: argparse.Namespace, dsn: str) -> None:
    """Run ``journal keys …`` or ``journal tokens …`` against the database at ``dsn``."""
    if args.command == "keys" and args.action == "create":
        grant, expires_in = _grant(args), _duration(args.expires_in)
        key = _with_connection(dsn, lambda conn: _create(conn, args.name, grant, expires_in))
        print(key, flush=True)  # alone on the last line, so `... | tail -n 1` takes it
    elif args.command == "keys" and args.action == "list":
        _with_connection(dsn, lambda conn: _list(conn, include_revoked=args.all))
    elif args.command == "keys":
        if not _with_connection(dsn, lambda conn: revoke_key(conn, args.name)):
            raise AccessUsageError(f"no key named {args.name!r} that is not revoked; see `journal keys list`")
        print(f"revoked key {args.name}; its live sessions are being closed", flush=True)
    elif args.action == "revoke":
        added = _with_connection(dsn, lambda conn: revoke_jti(conn, args.jti))
        print(f"revoked jti {args.jti}" + ("" if added else " (it was already)"), flush=True)
    else:
        for jti, when in _with_connection(dsn, list_revoked_jtis):
            print(f"{jti}\trevoked {_moment(when)}", flush=True)


def _with_connection(dsn: str, work: Callable[[asyncpg.Connection], Awaitable[_T]]) -> _T:
    async def go() -> _T:
        conn = await asyncpg.connect(dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(go())
    except asyncpg.UndefinedTableError:
        raise AccessUsageError("the access tables are missing; run `journal migrate` first") from None


async def _create(conn: asyncpg.Connection, name: str, grant: Grant, expires_in: timedelta | None) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", name):
        raise AccessUsageError(f"{name!r} is not a key name: use 1 to 64 characters of A-Z a-z 0-9 . _ -")
    expires_at = None if expires_in is None else datetime.now(UTC) + expires_in
    try:
        key = await create_key(conn, name, grant, expires_at)
    except asyncpg.UniqueViolationError:
        raise AccessUsageError(f"a key named {name!r} exists; revoke it first or choose another name") from None
    print(f"key {name}: {grant.describe()}, expires {_moment(expires_at)}", flush=True)
    print("store this key now: it is shown only once", flush=True)
    return key


async def _list(conn: asyncpg.Connection, *, include_revoked: bool) -> None:
    records = await list_keys(conn, include_revoked=include_revoked)
    print("name\tid\tgrant\tcreated\tlast used\texpires" + ("\trevoked" if include_revoked else ""), flush=True)
    for record in records:
        row = [record.name, record.id, record.grant.describe(), _moment(record.created_at)]
        row += [_moment(record.last_used_at), _moment(record.expires_at)]
        if include_revoked:
            row.append(_moment(record.revoked_at, none="-"))
        print("\t".join(row), flush=True)


def _grant(args: argparse.Namespace) -> Grant:
    fields: dict[str, object] = {"metrics": args.metrics}
    for option in ("channels", "types", "symbols"):
        values = _split(getattr(args, option))
        if values is not None:
            fields[option] = values
    levels = _split(args.levels)
    if levels is not None:
        unknown = sorted(set(levels) - set(LEVELS))
        if unknown:
            raise AccessUsageError(f"--levels: unknown level(s) {', '.join(unknown)}; use {', '.join(LEVELS)}")
        least = min(LEVELS.index(level) for level in levels)  # "warn" alone means warn and every more severe one
        fields["levels"] = list(LEVELS[least:]) if len(levels) == 1 else levels
    try:
        return Grant.model_validate(fields)
    except ValueError as exc:
        raise AccessUsageError(f"the grant is not valid: {exc}") from None


def _split(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _duration(text: str | None) -> timedelta | None:
    if text is None:
        return None
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise AccessUsageError(f"--expires-in {text!r}: use a number and a unit, s, m, h or d (e.g. 30d)")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def _moment(value: datetime | None, none: str = "never") -> str:
    return none if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
