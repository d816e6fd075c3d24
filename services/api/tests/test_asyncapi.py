"""docs/asyncapi.yaml describes journal.v1 as the server speaks it: a valid AsyncAPI 3.0.0 document whose message
schemas accept every frame a real session sends, and whose close-code table is the server's.

Offline: the official AsyncAPI 3.0.0 JSON Schema is vendored in tests/data (see its README), and every $ref resolves
in a local ``referencing.Registry``, which retrieves nothing it was not given (a reference outside it fails).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import random
import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import asyncpg
import pytest
import yaml
from jsonschema import Draft7Validator, FormatChecker
from pydantic import SecretStr
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from journal_api.journal.models import LEVELS, MAX_ID, Channel, Event, EventFilter, NewEvent
from journal_api.journal.redaction import REDACTED
from journal_api.stream.app import MAX_MESSAGE_BYTES
from journal_api.stream.protocol import (
    CLOSE_CODES,
    ErrorCode,
    ProtocolError,
    known_token,
    parse_subscribe,
    subscribe_token,
)
from journal_api.stream.settings import MIN_TOKEN_LENGTH

from .conftest import TOKEN, Client, Connect, StartServer, stalled_client, wait_for_close_log, write

if TYPE_CHECKING:
    from conftest import PostgresOutage  # the root conftest's fixture type

Frame = dict[str, Any]

ROOT = Path(__file__).resolve().parents[3]
SPEC_PATH = ROOT / "docs" / "asyncapi.yaml"
PROTOCOL_DOC = ROOT / "docs" / "30_WS_PROTOCOL.md"
DATA = Path(__file__).parent / "data"
ASYNCAPI_SCHEMA = DATA / "asyncapi-3.0.0.json"
SPEC_URI = SPEC_PATH.as_uri()
FORMAT_ERRORS = ("bad_request", "bad_cursor", "bad_filter")  # the faults the subscribe schema itself refuses
OTHER_EPOCH = "00000000-0000-4000-8000-000000000000"


# --- the document, and validators built from it ------------------------------------------------------------------


@cache
def spec() -> dict[str, Any]:
    """docs/asyncapi.yaml as data (shared: tests that change it work on a deep copy)."""
    document: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return document


@cache
def asyncapi_validator() -> Draft7Validator:
    """The official AsyncAPI 3.0.0 JSON Schema, every $ref resolved within the vendored file."""
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    resource: Resource[Any] = Resource.from_contents(schema)
    registry: Registry[Any] = Registry().with_resource(schema["$id"], resource).crawl()
    return Draft7Validator(schema, registry=registry)


@cache
def spec_registry() -> Registry[Any]:
    """The document as a JSON Schema resource, so a payload's "#/components/..." references resolve."""
    resource: Resource[Any] = Resource.from_contents(spec(), default_specification=DRAFT7)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return registry


_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
FORMATS = FormatChecker(formats=["uuid"])  # jsonschema's own uuid check; its date-time needs a missing package


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """RFC 3339 date-time: the grammar, and a real date and time (fromisoformat raises on 2026-02-30)."""
    if not isinstance(value, str):
        return True
    return _RFC3339.fullmatch(value) is not None and datetime.fromisoformat(value.upper()).tzinfo is not None


def resolve(node: Any) -> Any:
    """``node`` with any chain of $ref followed through the document."""
    while isinstance(node, dict) and "$ref" in node:
        node = spec_registry().resolver(SPEC_URI).lookup(node["$ref"]).contents
    return node


def the_channel() -> tuple[str, dict[str, Any]]:
    [(name, channel)] = spec()["channels"].items()
    return name, channel


def message_pointer(name: str) -> str:
    """Where the channel's message ``name`` is defined in the document."""
    channel_name, channel = the_channel()
    node = channel["messages"][name]
    return str(node["$ref"]) if "$ref" in node else f"#/channels/{channel_name}/messages/{name}"


def validator(pointer: str) -> Draft7Validator:
    """A validator for the schema at ``pointer`` (e.g. ``#/components/schemas/Id``) in the document."""
    return Draft7Validator({"$ref": f"{SPEC_URI}{pointer}"}, registry=spec_registry(), format_checker=FORMATS)


def payload_validator(name: str) -> Draft7Validator:
    return validator(f"{message_pointer(name)}/payload")


def problems(name: str, instance: object) -> list[str]:
    """Why ``instance`` is not a valid payload of message ``name`` (empty when it is)."""
    return sorted(f"{error.json_path}: {error.message}" for error in payload_validator(name).iter_errors(instance))


def messages_of(action: str) -> set[str]:
    """The names of the channel messages that operations with ``action`` (send or receive) carry."""
    names: set[str] = set()
    for operation in spec()["operations"].values():
        if operation["action"] == action:
            names |= {reference["$ref"].rsplit("/", 1)[1] for reference in operation["messages"]}
    return names


def op_of(name: str) -> str:
    """The ``op`` the payload of message ``name`` must carry."""
    op: str = resolve(resolve({"$ref": message_pointer(name)})["payload"])["properties"]["op"]["const"]
    return op


def assert_documented(frame: Frame) -> str:
    """``frame`` is valid against the received message the document gives its op; return that message's name."""
    by_op = {op_of(name): name for name in messages_of("receive")}
    assert frame.get("op") in by_op, f"the document has no received message with op {frame.get('op')!r}: {frame}"
    name = by_op[frame["op"]]
    assert problems(name, frame) == [], f"this {name} frame breaks docs/asyncapi.yaml: {frame}"
    return name


def close_codes() -> dict[int, list[str]]:
    """The document's close codes, each with the error codes that come with it."""
    return {entry["code"]: entry["errors"] for entry in the_channel()[1]["x-close-codes"]}


def assert_closed_as_documented(code: int | None, frames: list[Frame], error: str | None) -> None:
    """Every frame is documented; the session ended with ``error`` (or no error frame) and its close code."""
    for frame in frames:
        assert_documented(frame)
    table = close_codes()
    assert code in table, f"close code {code} is not in x-close-codes"
    errors = [frame for frame in frames if frame["op"] == "error"]
    if error is None:
        assert (errors, table[code]) == ([], [])
    else:
        assert frames, f"no frame before the close; expected an error frame {error}"
        assert errors == [frames[-1]]
        assert errors[0]["code"] == error
        assert error in table[code], f"x-close-codes says {error} closes with another code than {code}"


def table_rows(markdown: str, heading: str) -> dict[int, list[str]]:
    """The close-code table under ``heading`` in ``markdown``: code -> the error codes its row names."""
    assert heading in markdown, f"no {heading!r} section to compare x-close-codes with"
    section = markdown.split(heading, 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| *([0-9]{4}) *\| *([^|]*?) *\|", section, re.MULTILINE)
    return {int(code): re.findall(r"`([a-z_]+)`", errors) for code, errors in rows}


def server_accepts(message: dict[str, Any]) -> bool:
    """Whether the server's subscribe parser accepts ``message`` (a missing token is sent in the header)."""
    header = TOKEN if message.get("token") is None else None
    try:
        token, request = subscribe_token(json.dumps(message), header_token=header)
        if not known_token(token, [SecretStr(TOKEN)]):
            return False
        parse_subscribe(request)
    except ProtocolError:
        return False
    return True


def subscribe(**fields: Any) -> dict[str, Any]:
    return {"op": "subscribe", "token": TOKEN, **fields}


def with_filter(**fields: Any) -> dict[str, Any]:
    return subscribe(filter=fields)


async def frames_until(client: Client, done: Callable[[Frame], bool], timeout_s: float = 60) -> list[Frame]:
    """Frames up to and including the first for which ``done`` holds."""
    async with asyncio.timeout(timeout_s):  # for the whole wait: heartbeats must not keep it going
        frames = [await client.frame()]
        while not done(frames[-1]):
            frames.append(await client.frame())
    return frames


async def epoch_of(conn: asyncpg.Connection) -> str:
    return str(await conn.fetchval("SELECT epoch FROM journal_meta"))


# --- the document is valid AsyncAPI 3.0.0 ------------------------------------------------------------------------


def test_the_document_is_valid_asyncapi_3_0_0() -> None:
    """The official JSON Schema finds nothing wrong, and the YAML holds only JSON (no dates, no integer keys)."""
    document = spec()
    errors = [f"{error.json_path}: {error.message}" for error in asyncapi_validator().iter_errors(document)]
    assert errors == []
    assert document["asyncapi"] == "3.0.0"
    assert json.loads(json.dumps(document)) == document


def test_the_vendored_schema_is_the_one_its_readme_names() -> None:
    """tests/data/asyncapi-3.0.0.json is byte for byte the file the README says it is."""
    readme = (DATA / "README.md").read_text()
    [digest] = re.findall(r"sha256: `([0-9a-f]{64})`", readme)
    assert hashlib.sha256(ASYNCAPI_SCHEMA.read_bytes()).hexdigest() == digest
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    assert schema["$id"] == "http://asyncapi.com/definitions/3.0.0/asyncapi.json"
    assert schema["properties"]["asyncapi"]["const"] == "3.0.0"


def _unknown_top_level_field(document: dict[str, Any]) -> None:
    document["channelz"] = {}


def _asyncapi_2_6(document: dict[str, Any]) -> None:
    document["asyncapi"] = "2.6.0"


def _asyncapi_2_action(document: dict[str, Any]) -> None:
    document["operations"]["subscribe"]["action"] = "publish"


def _payload_schema_with_a_bad_type(document: dict[str, Any]) -> None:
    document["components"]["messages"]["ready"]["payload"]["type"] = 5


def _message_field_typo(document: dict[str, Any]) -> None:
    document["components"]["messages"]["event"]["payloads"] = {}


def _server_without_protocol(document: dict[str, Any]) -> None:
    del document["servers"]["journal"]["protocol"]


def _security_scheme_of_no_kind(document: dict[str, Any]) -> None:
    document["components"]["securitySchemes"]["bearerToken"]["type"] = "token"


@pytest.mark.parametrize(
    "breakage",
    [
        _unknown_top_level_field,
        _asyncapi_2_6,
        _asyncapi_2_action,
        _payload_schema_with_a_bad_type,
        _message_field_typo,
        _server_without_protocol,
        _security_scheme_of_no_kind,
    ],
)
def test_validation_rejects_a_broken_copy(breakage: Callable[[dict[str, Any]], None]) -> None:
    """The validation is real: the same document with one mistake fails it."""
    broken = copy.deepcopy(spec())
    breakage(broken)
    assert not asyncapi_validator().is_valid(broken)


def test_every_example_matches_its_schema() -> None:
    """The examples in the document are valid instances of the schemas they illustrate."""
    _, channel = the_channel()
    checked: list[str] = []
    for name in channel["messages"]:
        for example in resolve(channel["messages"][name]).get("examples", []):
            assert problems(name, example["payload"]) == [], example
            checked.append(name)
    for name, schema in spec()["components"]["schemas"].items():
        for example in schema.get("examples", []):
            assert validator(f"#/components/schemas/{name}").is_valid(example), (name, example)
            checked.append(name)
    assert set(channel["messages"]) <= set(checked)


def test_the_document_describes_one_channel_and_its_operations() -> None:
    """One server (ws, bearer token), one channel /ws, what a client sends, what it receives and the replies."""
    document = spec()
    [server] = document["servers"].values()
    assert server["protocol"] == "ws"
    scheme = resolve(server["security"][0])
    assert (scheme["type"], scheme["scheme"], scheme["x-token-field"]) == ("http", "bearer", "token")
    name, channel = the_channel()
    assert channel["address"] == "/ws"
    assert messages_of("send") == {"subscribe", "ping", "auth"}
    assert messages_of("receive") == {"ready", "event", "live", "heartbeat", "pong", "expiring", "auth_ok", "error"}
    assert messages_of("send") | messages_of("receive") == set(channel["messages"])
    assert {message: op_of(message) for message in channel["messages"]} == {m: m for m in channel["messages"]}
    operations = document["operations"]
    for operation in operations.values():
        assert operation["channel"] == {"$ref": f"#/channels/{name}"}
    replies = {
        key: [reference["$ref"].rsplit("/", 1)[1] for reference in operation["reply"]["messages"]]
        for key, operation in operations.items()
        if "reply" in operation
    }
    assert replies == {"subscribe": ["ready", "error"], "ping": ["pong"], "auth": ["auth_ok", "error"]}


# --- the document agrees with the server's code and docs/30_WS_PROTOCOL.md ----------------------------------------


def test_the_close_code_table_is_the_servers() -> None:
    """x-close-codes maps each error code to exactly the close code protocol.py gives it, lists every error code
    the server has, and matches the tables in the channel's description and in docs/30_WS_PROTOCOL.md."""
    table = close_codes()
    by_error = {error: code for code, errors in table.items() for error in errors}
    assert by_error == CLOSE_CODES
    assert sum(len(errors) for errors in table.values()) == len(by_error)  # no error code listed twice
    assert spec()["components"]["schemas"]["ErrorCode"]["enum"] == list(get_args(ErrorCode))
    assert sorted(table) == [1000, 1009, 1011, 1012, 4400, 4401, 4403, 4408, 4409, 4429]
    assert table_rows(the_channel()[1]["description"], "## Close codes") == table
    assert table_rows(PROTOCOL_DOC.read_text(), "## Close codes") == table


def _constraints(schema: Any) -> Any:
    """The validating keywords of a schema, references followed and ``null`` branches dropped, for comparison."""
    schema = resolve(schema)
    if isinstance(schema, list):
        return [_constraints(item) for item in schema]
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches is not None:
        [branch] = [branch for branch in branches if resolve(branch) != {"type": "null"}]
        return _constraints(branch)
    keywords = ("type", "enum", "const", "pattern", "minLength", "maxLength", "minItems", "maxItems")
    found = {key: schema[key] for key in keywords if key in schema}
    if "items" in schema:
        found["items"] = _constraints(schema["items"])
    return found


def test_the_schemas_carry_the_models_constraints() -> None:
    """The filter, the labels, types and levels are constrained exactly as the pydantic models constrain them; the
    event object has exactly the read model's fields (plus the derived channel)."""
    schemas = spec()["components"]["schemas"]
    pydantic_filter = EventFilter.model_json_schema()
    document_filter = schemas["Filter"]
    assert document_filter["additionalProperties"] is pydantic_filter["additionalProperties"] is False
    assert set(document_filter["properties"]) == set(pydantic_filter["properties"])
    for field, schema in document_filter["properties"].items():
        assert _constraints(schema) == _constraints(pydantic_filter["properties"][field]), field
    new_event = NewEvent.model_json_schema()["properties"]
    assert _constraints(schemas["EventType"]) == _constraints(new_event["type"])
    assert _constraints(schemas["Label"]) == _constraints(new_event["symbol"]) == _constraints(new_event["trade_id"])
    assert _constraints(schemas["Level"]) == _constraints(new_event["level"])
    assert schemas["Level"]["enum"] == list(LEVELS)
    assert schemas["Channel"]["enum"] == list(get_args(Channel))
    assert set(schemas["Event"]["properties"]) == set(Event.model_fields) | {"channel"}
    assert schemas["Event"]["required"] == list(schemas["Event"]["properties"])
    assert schemas["Cursor"]["anyOf"][2]["maximum"] == MAX_ID
    token = resolve(spec()["components"]["messages"]["subscribe"])["payload"]["properties"]["token"]
    assert _constraints(token) == {"type": "string", "minLength": MIN_TOKEN_LENGTH}
    assert the_channel()[1]["x-max-message-bytes"] == MAX_MESSAGE_BYTES


# --- the subscribe schema accepts what the server accepts ----------------------------------------------------------


SUBSCRIBE_CASES: list[tuple[dict[str, Any], bool]] = [
    (subscribe(), True),
    ({"op": "subscribe"}, True),  # the token in the Authorization header
    (subscribe(token=None), True),
    (subscribe(cursor=None), True),
    (subscribe(cursor="0"), True),
    (subscribe(cursor="1041"), True),
    (subscribe(cursor=str(MAX_ID)), True),
    (subscribe(cursor="0000000000000000001"), True),
    (subscribe(cursor=0), True),
    (subscribe(cursor=MAX_ID), True),
    (subscribe(epoch=OTHER_EPOCH), True),  # well formed: whether it is this journal's is the server's call
    (subscribe(epoch="not a uuid"), True),
    (subscribe(epoch=None), True),
    (subscribe(filter=None), True),
    (subscribe(filter={}), True),
    (with_filter(channels=None, types=None, symbols=None, trade_ids=None, min_level=None), True),
    (
        with_filter(
            channels=["events", "trades", "snapshots"],
            types=["order.*", "trade.filled", "a.b.c.*", "x_1.y_2"],
            symbols=["BTC-USD", "x" * 64, "the bearer of bad news", "Bearer short", "\u00e9\n\t"],
            trade_ids=["T-000042"],
            min_level="critical",
        ),
        True,
    ),
    (with_filter(channels=["trades"] * 100), True),
    (with_filter(types=["a." + "b" * 126]), True),
    (with_filter(min_level="debug"), True),
    ({"token": TOKEN}, False),
    (subscribe(op="ping"), False),
    (subscribe(op="Subscribe"), False),
    (subscribe(filters={"channels": ["trades"]}), False),
    (subscribe(curser="1"), False),
    (subscribe(extra=None), False),
    (subscribe(epoch=7), False),
    (subscribe(epoch={}), False),
    (subscribe(epoch=True), False),
    (subscribe(token=12345), False),
    (subscribe(token="short"), False),
    (subscribe(token=[TOKEN]), False),
    (subscribe(cursor="-1"), False),
    (subscribe(cursor="abc"), False),
    (subscribe(cursor="1.5"), False),
    (subscribe(cursor=""), False),
    (subscribe(cursor=" 1"), False),
    (subscribe(cursor="+1"), False),
    (subscribe(cursor="0x10"), False),
    (subscribe(cursor="9223372036854775808"), False),
    (subscribe(cursor="9999999999999999999"), False),
    (subscribe(cursor="12345678901234567890"), False),
    (subscribe(cursor="00000000000000000001"), False),
    (subscribe(cursor="\u0661"), False),  # ARABIC-INDIC DIGIT ONE: int() reads it as 1, the protocol does not
    (subscribe(cursor=1.5), False),
    (subscribe(cursor=True), False),
    (subscribe(cursor=False), False),
    (subscribe(cursor=-1), False),
    (subscribe(cursor=MAX_ID + 1), False),
    (subscribe(cursor=[]), False),
    (subscribe(cursor={}), False),
    (subscribe(filter="trades"), False),
    (subscribe(filter=[]), False),
    (subscribe(filter=5), False),
    (with_filter(level="warn"), False),
    (with_filter(channels=[]), False),
    (with_filter(channels=["orders"]), False),
    (with_filter(channels="trades"), False),
    (with_filter(channels=["trades"] * 101), False),
    (with_filter(channels=[None]), False),
    (with_filter(types=["order"]), False),
    (with_filter(types=["Order.x"]), False),
    (with_filter(types=["order.*.x"]), False),
    (with_filter(types=["*"]), False),
    (with_filter(types=["order.**"]), False),
    (with_filter(types=["a." + "b" * 127]), False),
    (with_filter(types=["order.*", 5]), False),
    (with_filter(symbols=[""]), False),
    (with_filter(symbols=["x" * 65]), False),
    (with_filter(symbols=["a\x00b"]), False),
    (with_filter(symbols=[1]), False),
    (with_filter(symbols=["Bearer abcdefghijkl"]), False),
    (with_filter(trade_ids=["eyJhbGciOi.eyJzdWIi.c2ln"]), False),
    (with_filter(trade_ids=[]), False),
    (with_filter(min_level="warning"), False),
    (with_filter(min_level="WARN"), False),
    (with_filter(min_level=3), False),
]


def _case_id(value: object) -> str:
    """A readable test id: the message without the usual op and token, or whether it is accepted."""
    if isinstance(value, bool):
        return "accepted" if value else "refused"
    assert isinstance(value, dict)
    usual = {"op": "subscribe", "token": TOKEN}
    return json.dumps(
        {key: item for key, item in value.items() if key not in usual or usual[key] != item}, ensure_ascii=True
    )[:60]


@pytest.mark.parametrize(("message", "accepted"), SUBSCRIBE_CASES, ids=_case_id)
def test_the_subscribe_schema_accepts_exactly_what_the_server_accepts(message: dict[str, Any], accepted: bool) -> None:
    """A subscribe the schema accepts passes every format check of the server (no bad_request, bad_cursor or
    bad_filter), and one it refuses is refused by the server."""
    assert server_accepts(message) is accepted
    assert (problems("subscribe", message) == []) is accepted


def test_the_cursor_bound_is_exactly_the_servers() -> None:
    """Around 9223372036854775807 digit by digit, and at random: the schema's bound is the server's."""
    top = str(MAX_ID)
    texts = {top[:i] + digit + top[i + 1 :] for i in range(len(top)) for digit in "0123456789"}
    rng = random.Random(20261126)
    texts |= {str(rng.randrange(10**18, 10**19)) for _ in range(300)}
    texts |= {str(rng.randrange(10**6)).zfill(19) for _ in range(20)}
    outcomes = {
        (text, type(cursor).__name__): (
            server_accepts(subscribe(cursor=cursor)),
            problems("subscribe", subscribe(cursor=cursor)) == [],
            int(text) <= MAX_ID,
        )
        for text in texts
        for cursor in (text, int(text))
    }
    assert [key for key, answers in outcomes.items() if len(set(answers)) != 1] == []
    assert any(int(text) > MAX_ID for text in texts)
    assert any(int(text) <= MAX_ID for text in texts)


LABELS = [
    "BTC-USD",
    "T-000042",
    "x",
    "x" * 64,
    "x" * 65,
    "",
    "nul\x00inside",
    "the bearer of bad news",
    "Bearer short",
    "Bearer abcdefgh",
    "bearer%20abcdefgh",
    "BEARER \t abc.def~+/==",
    "xBearer abcdefgh",
    "Bearer abcdefg\u212a",  # KELVIN SIGN: a letter to a case-insensitive [a-z]
    "Bearer abcdefg\u0131",
    "Bearer abcdefg\u00e9",
    "eyJhbGciOi.eyJzdWIi.c2ln",
    "eyJhbGciOi.eyJzdWIi.",
    "eyJ.x.y",
    "eyjabc.def.ghi",
    "-----BEGIN PRIVATE KEY-----",
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    "-----BEGIN ENCRYPTED PRIVATE KEY-----",
    "-----begin private key-----",
    "-----BEGIN PUBLIC KEY-----",
]


def test_filter_labels_are_refused_exactly_as_the_server_refuses() -> None:
    """Length, NUL and secret-looking values: a symbol or trade id the schema accepts is one the server accepts."""
    for field in ("symbols", "trade_ids"):
        outcomes = {
            label: (
                server_accepts(with_filter(**{field: [label]})),
                problems("subscribe", with_filter(**{field: [label]})) == [],
            )
            for label in LABELS
        }
        assert [label for label, (server, schema) in outcomes.items() if server is not schema] == []
        assert {server for server, _ in outcomes.values()} == {True, False}


def test_a_cursor_with_a_trailing_newline_is_a_bad_cursor() -> None:
    """A cursor is digits only: "1\\n" is not one."""
    assert not server_accepts(subscribe(cursor="1\n"))


def test_ping_is_exactly_one_object() -> None:
    """{"op":"ping"} and nothing else: a ping with more fields is refused after subscribing too."""
    assert problems("ping", {"op": "ping"}) == []
    assert problems("ping", {"op": "ping", "pad": "x"}) != []
    assert problems("ping", {"op": "pong"}) != []


# --- real frames from a real server --------------------------------------------------------------------------------


async def write_mixed(conn: asyncpg.Connection) -> list[int]:
    """Events of every channel and several levels, with symbol and trade id set and unset, one full of secrets."""
    return [
        *await write(
            conn, type="trade.filled", symbol="BTC-USD", trade_id="T-1", payload='{"side": "buy", "price": 97012.5}'
        ),
        *await write(conn, type="order.rejected", level="error", symbol="ETH-USD"),
        *await write(
            conn, type="snapshot.portfolio", level="debug", payload='{"positions": [], "nested": {"a": [1, 2.5, null]}}'
        ),
        *await write(
            conn,
            type="risk.halt",
            level="critical",
            symbol="Bearer abcdefghijklmnop",
            trade_id="eyJhbGciOi.eyJzdWIi.c2ln",
            payload='{"api_key": "sk-live-0123456789", "note": "Bearer abcdefghijklmnop", "ok": 1}',
        ),
        *await write(conn, 2, type="order.submitted", level="warn", trade_id="T-2", payload="{}"),
    ]


async def test_a_live_session_sends_only_documented_frames(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """ready, the replayed backlog, live, live events, pong and heartbeats: every frame is valid against its message
    in the document, and the document's strictness would catch a frame that drifted."""
    backlog = await write_mixed(conn)
    first = subscribe(cursor="0", epoch=await epoch_of(conn))
    ping = {"op": "ping"}
    assert problems("subscribe", first) == problems("ping", ping) == []
    async with journal_server(heartbeat_s=0.2) as server, connect(server.url) as client:
        await client.send(first)
        frames = await frames_until(client, lambda frame: frame["op"] == "live")
        tail = await write_mixed(conn)
        frames += await frames_until(client, lambda frame: frame.get("cursor") == str(tail[-1]))
        await client.send(ping)
        frames += await frames_until(client, lambda frame: frame["op"] == "pong")
        frames += await frames_until(client, lambda frame: frame["op"] == "heartbeat")
    names = [assert_documented(frame) for frame in frames]
    assert set(names) == {"ready", "event", "live", "pong", "heartbeat"}
    assert frames[0] == {"op": "ready", "epoch": first["epoch"], "cursor": "0", "head": str(backlog[-1])}
    events = [frame for frame in frames if frame["op"] == "event"]
    assert [frame["cursor"] for frame in events] == [frame["event"]["id"] for frame in events]
    assert [int(frame["cursor"]) for frame in events] == backlog + tail
    secret = [frame["event"] for frame in events if frame["event"]["type"] == "risk.halt"]
    assert len(secret) == 2
    for event in secret:
        assert (event["symbol"], event["trade_id"]) == (REDACTED, REDACTED)
        assert event["payload"] == {"api_key": REDACTED, "note": REDACTED, "ok": 1}
    assert {event["event"]["symbol"] is None for event in events} == {True, False}
    assert {event["event"]["trade_id"] is None for event in events} == {True, False}
    assert {event["event"]["channel"] for event in events} == {"events", "trades", "snapshots"}

    trade = next(frame for frame in events if frame["event"]["type"] == "trade.filled")
    drifted: list[Frame] = [
        {**trade, "extra": 1},
        {**trade, "cursor": int(trade["cursor"])},
        {key: value for key, value in trade.items() if key != "cursor"},
        {**trade, "event": {**trade["event"], "channel": "snapshots"}},  # not the channel its type gives
        {**trade, "event": {**trade["event"], "id": int(trade["event"]["id"])}},
        {**trade, "event": {**trade["event"], "ts": trade["event"]["ts"].replace("+00:00", "Z")}},
        {**trade, "event": {**trade["event"], "level": "warning"}},
        {**trade, "event": {**trade["event"], "symbol": "Bearer abcdefghijklmnop"}},  # would be an unredacted secret
        {**trade, "event": {key: value for key, value in trade["event"].items() if key != "payload"}},
        {**trade, "event": {**trade["event"], "extra": None}},
    ]
    assert [frame for frame in drifted if problems("event", frame) == []] == []
    beat = next(frame for frame in frames if frame["op"] == "heartbeat")
    assert problems("heartbeat", {**beat, "ts": "2026-11-26 09:14:03"}) != []
    assert problems("heartbeat", {**beat, "ts": "2026-02-30T09:14:03.000000+00:00"}) != []  # no such day
    assert problems("ready", {**frames[0], "epoch": "not-a-uuid"}) != []


async def test_a_filtered_session_with_the_token_in_the_header_is_documented(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """A subscribe with no token field, an integer cursor and every filter field: valid against the document, and
    so is every frame it gets."""
    await write_mixed(conn)
    first = {
        "op": "subscribe",
        "cursor": 0,
        "filter": {
            "channels": ["trades", "events"],
            "types": ["trade.*", "order.rejected"],
            "symbols": ["BTC-USD", "ETH-USD"],
            "trade_ids": ["T-1"],
            "min_level": "info",
        },
    }
    assert problems("subscribe", first) == []
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with journal_server() as server, connect(server.url, additional_headers=headers) as client:
        await client.send(first)
        frames = await frames_until(client, lambda frame: frame["op"] == "live")
    assert [assert_documented(frame) for frame in frames] == ["ready", "event", "live"]
    assert frames[1]["event"]["type"] == "trade.filled"


@pytest.mark.parametrize(
    ("settings", "first", "error"),
    [
        ({}, "not json", "bad_request"),
        ({}, subscribe(filters={"channels": ["trades"]}), "bad_request"),
        ({}, subscribe(epoch=7), "bad_request"),
        ({}, subscribe(cursor="-1"), "bad_cursor"),
        ({}, subscribe(cursor=MAX_ID + 1), "bad_cursor"),
        ({}, with_filter(min_level="warning"), "bad_filter"),
        ({}, with_filter(symbols=["Bearer abcdefghijkl"]), "bad_filter"),
        ({}, subscribe(token="wrong-token-0123456789"), "unauthorized"),
        ({}, {"op": "subscribe"}, "unauthorized"),
        ({"auth_timeout_s": 0.2}, None, "auth_timeout"),
        ({}, subscribe(cursor="1"), "cursor_ahead"),
        ({}, subscribe(cursor="0", epoch=OTHER_EPOCH), "epoch_mismatch"),
    ],
    ids=lambda value: json.dumps(value)[:60] if not isinstance(value, str) else value,
)
async def test_refusals_send_the_documented_error_and_close_code(
    journal_server: StartServer, connect: Connect, settings: dict[str, Any], first: object, error: str
) -> None:
    """Each refusal of a first message: one documented error frame, then the close code x-close-codes gives its
    code; the subscribe schema refuses exactly the messages refused for their format."""
    if isinstance(first, dict):
        assert (problems("subscribe", first) == []) is (error not in FORMAT_ERRORS)
    async with journal_server(**settings) as server, connect(server.url) as client:
        if first is not None:
            await client.send(first)
        code, frames = await client.closed()
    assert_closed_as_documented(code, frames, error)
    assert len(frames) == 1


async def test_anything_but_ping_after_subscribing_is_a_documented_bad_request(
    journal_server: StartServer, connect: Connect
) -> None:
    """A ping with an extra field is not a ping (the schema says so too): error bad_request, close 4400."""
    message = {"op": "ping", "extra": True}
    assert problems("ping", message) != []
    async with journal_server() as server, connect(server.url) as client:
        await client.subscribe()
        await client.send(message)
        code, frames = await client.closed()
    assert_closed_as_documented(code, frames, "bad_request")


async def test_overloaded_is_documented(journal_server: StartServer, connect: Connect) -> None:
    """Past JOURNAL_MAX_CONNECTIONS: error overloaded, close 4429."""
    async with journal_server(max_connections=1) as server, connect(server.url) as first:
        await first.subscribe()
        async with connect(server.url) as second:
            code, frames = await second.closed()
    assert_closed_as_documented(code, frames, "overloaded")


async def test_a_database_outage_is_a_documented_internal_error(
    journal_server: StartServer, connect: Connect, postgres_outage: PostgresOutage
) -> None:
    """A subscribe while Postgres is down: error internal_error, close 1011."""
    async with journal_server() as server:
        await postgres_outage.begin()
        try:
            async with connect(server.url) as client:
                await client.send(subscribe(cursor="0"))
                code, frames = await client.closed()
        finally:
            await postgres_outage.end()
    assert_closed_as_documented(code, frames, "internal_error")


async def test_a_stalled_client_gets_a_documented_slow_consumer(
    conn: asyncpg.Connection, journal_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that takes no frame for JOURNAL_SEND_TIMEOUT_S: error slow_consumer, close 4429."""
    caplog.set_level(logging.INFO, logger="journal_api")
    async with journal_server(send_timeout_s=0.3) as server, stalled_client(conn, server.url) as client:
        await wait_for_close_log(caplog, "slow_consumer")  # the server gave up on the client: now read
        code, frames = await client.closed(timeout_s=60)
    assert_closed_as_documented(code, frames, "slow_consumer")


async def test_closes_without_an_error_are_documented(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """1009 (a message over the documented size), 1012 (the journal was reset) and 1000 (the client leaves) come
    without an error frame, as x-close-codes says."""
    too_big = {"op": "ping", "pad": "x" * MAX_MESSAGE_BYTES}
    async with journal_server(check_interval_s=0.05) as server:
        async with connect(server.url) as client:
            await client.subscribe()
            await client.send(too_big)
            code, frames = await client.closed()
        assert code == 1009
        assert_closed_as_documented(code, frames, None)
        async with connect(server.url) as client:
            await client.subscribe(cursor="0")
            await conn.execute("UPDATE journal_meta SET epoch = gen_random_uuid()")
            code, frames = await client.closed()
        assert code == 1012
        assert_closed_as_documented(code, frames, None)
        async with connect(server.url) as client:
            await client.subscribe()
            await client.socket.close()
            code = client.socket.close_code
        assert code == 1000
        assert_closed_as_documented(code, [], None)
