-- Writers never wait on each other: the delivery horizon replaces the global id lock.
-- See docs/20_EVENT_JOURNAL.md#the-delivery-horizon for the invariants and why they hold.
--
-- Safe to run while writers are active, with no table lock: a transaction that drew ids under 0001's trigger
-- still holds 0001's exclusive lock (key 0x4A524E4C00000001) until it ends, and journal_horizon() counts that
-- lock as a floor of 0, so nothing is delivered past such a transaction until it has committed or rolled back.

-- Before its first id, each event-writing transaction takes a SHARED transaction-scoped advisory lock whose key
-- is 0x4A46 << 48 plus its floor: the sequence's top at that moment, which is below every id it will draw. Shared
-- locks never conflict, so no writer waits for another. The lock goes when the transaction (or the savepoint
-- that took it) ends, at the same moment as the marker setting below, so a rolled-back savepoint takes it again.
CREATE OR REPLACE FUNCTION events_assign_id() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    top bigint;
BEGIN
    IF current_setting('journal.floor_xact', true) IS DISTINCT FROM pg_current_xact_id()::text THEN
        SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END INTO top FROM events_id_seq;
        IF top >= 281474976710655 THEN  -- 2^48 - 1: the floor must fit the lock key's low 48 bits
            RAISE EXCEPTION 'events_id_seq is at %, beyond the journal''s 2^48 ids', top;
        END IF;
        PERFORM pg_advisory_xact_lock_shared(5351965207176413184 + top);  -- 0x4A46000000000000 + floor
        PERFORM set_config('journal.floor_xact', pg_current_xact_id()::text, true);
    END IF;
    NEW.id := nextval('events_id_seq');
    RETURN NEW;
END
$$;

-- H = least(T, F): T the sequence's top, read first; F the lowest floor held, read in a later statement. Every
-- id <= H that will ever commit has committed, and is visible to any statement that starts after this returns.
-- VOLATILE and READ COMMITTED: each statement takes a fresh snapshot (a STABLE function, or any other isolation
-- level, would read pg_locks and the rows from one old snapshot).
CREATE FUNCTION journal_horizon(OUT horizon bigint, OUT top bigint, OUT oldest_floor bigint)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'the journal''s horizon must be read under READ COMMITTED, not %',
            current_setting('transaction_isolation')
            USING HINT = 'read outside an explicit transaction, with default_transaction_isolation = ''read committed''';
    END IF;
    SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END INTO top FROM events_id_seq;
    SELECT min(CASE WHEN l.classid = 1246907980::oid THEN 0  -- 0001's exclusive lock: its ids are unknown
                    ELSE ((l.classid::bigint & 65535) << 32) | l.objid::bigint END)
      INTO oldest_floor
      FROM pg_locks AS l
     WHERE l.locktype = 'advisory'
       AND l.objsubid = 1
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND ((l.classid::bigint >> 16) = 19014  -- 0x4A46: the floor locks
            OR (l.classid = 1246907980::oid AND l.objid = 1::oid));  -- 0x4A524E4C00000001
    horizon := least(top, oldest_floor);
END
$$;

-- The hub's read: the horizon, then the rows after `after` up to it, with the epoch, in one round trip. At least
-- one row comes back (id NULL when there is no new event), unless journal_meta is empty.
CREATE FUNCTION journal_read(after bigint, max_rows integer)
RETURNS TABLE (
    horizon bigint, top bigint, oldest_floor bigint, epoch text,
    id bigint, ts timestamptz, type text, level text, public_safe boolean, symbol text, trade_id text, payload text
)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    h bigint;
    t bigint;
    f bigint;
BEGIN
    SELECT j.horizon, j.top, j.oldest_floor INTO h, t, f FROM journal_horizon() AS j;
    RETURN QUERY  -- a later statement, so a fresh snapshot: it sees every commit the horizon counted on
        SELECT h, t, f, m.epoch::text, e.id, e.ts, e.type::text, e.level, e.public_safe, e.symbol, e.trade_id,
               e.payload::text
        FROM journal_meta AS m
        LEFT JOIN LATERAL (
            SELECT * FROM events AS x WHERE x.id > after AND x.id <= h ORDER BY x.id LIMIT max_rows
        ) AS e ON true
        ORDER BY e.id;
END
$$;

-- Two-phase commit: PREPARE TRANSACTION is refused after a NOTIFY, so a transaction that will be prepared declares
-- it (SET LOCAL journal.two_phase = 'on') before its first event and sends none. Its floor stays held by the
-- prepared transaction, so readers poll until COMMIT PREPARED (docs/20_EVENT_JOURNAL.md#two-phase-commit).
CREATE OR REPLACE FUNCTION events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('journal.two_phase', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_notify('events', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;
