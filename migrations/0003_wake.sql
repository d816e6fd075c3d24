-- Wake the stream only when it sleeps: writers NOTIFY once per transaction, and only while some stream server's
-- hub may be asleep. See docs/20_EVENT_JOURNAL.md#waking-the-stream for the protocol and why no row is stranded.

-- One row per running hub (a stream server process). UNLOGGED: a crash empties it, and hubs upsert their row
-- (awake) whenever they connect. (pid, backend_start) name the hub's LISTEN backend, so a row whose backend is
-- gone can be swept: a dead hub marked asleep would otherwise make every writer notify for good.
CREATE UNLOGGED TABLE journal_hubs (
    name          text PRIMARY KEY,
    pid           integer NOT NULL,
    backend_start timestamptz NOT NULL,
    asleep        boolean NOT NULL DEFAULT false,
    changed_at    timestamptz NOT NULL DEFAULT now()
);

-- Writers: the floor lock first, then (in a later statement, so a fresh snapshot under READ COMMITTED) the hubs'
-- flags; NOTIFY the transaction's first id if any hub may be asleep. A transaction outside READ COMMITTED reads
-- the flags from a snapshot that may predate "asleep", so it always notifies. A transaction declared two-phase
-- never notifies, and one that is not declared holds a lock that PREPARE TRANSACTION always refuses, so
-- two-phase commit without the declaration fails every time, never only while a hub sleeps.
CREATE OR REPLACE FUNCTION events_assign_id() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    top bigint;
    wake boolean := false;
BEGIN
    IF current_setting('journal.floor_xact', true) IS DISTINCT FROM pg_current_xact_id()::text THEN
        SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END INTO top FROM events_id_seq;
        IF top >= 281474976710655 THEN  -- 2^48 - 1: the floor must fit the lock key's low 48 bits
            RAISE EXCEPTION 'events_id_seq is at %, beyond the journal''s 2^48 ids', top;
        END IF;
        PERFORM pg_advisory_xact_lock_shared(5351965207176413184 + top);  -- 0x4A46000000000000 + floor
        PERFORM set_config('journal.floor_xact', pg_current_xact_id()::text, true);
        IF current_setting('journal.two_phase', true) IS DISTINCT FROM 'on' THEN
            -- Not declared two-phase: PREPARE refuses a transaction holding the same lock at session and at
            -- transaction level (0x4A47000000000000, "JG": this guard, used nowhere else).
            IF current_setting('journal.guard_session', true) IS DISTINCT FROM pg_backend_pid()::text THEN
                PERFORM pg_advisory_lock_shared(5352246682153123840);
                PERFORM set_config('journal.guard_session', pg_backend_pid()::text, false);
            END IF;
            PERFORM pg_advisory_xact_lock_shared(5352246682153123840);
            wake := current_setting('transaction_isolation') <> 'read committed'
                    OR EXISTS (SELECT 1 FROM journal_hubs WHERE asleep);
        END IF;
    END IF;
    NEW.id := nextval('events_id_seq');
    IF wake THEN
        PERFORM pg_notify('events', NEW.id::text);
    END IF;
    RETURN NEW;
END
$$;

-- The per-row NOTIFY is replaced by the one above. Its trigger stays, doing nothing: dropping it would take an
-- ACCESS EXCLUSIVE lock on events, which waits for every open writer and stalls the others behind it, and this
-- migration must be safe to run while the engine writes (replacing functions takes no table lock).
CREATE OR REPLACE FUNCTION events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULL;
END
$$;

-- A hub that has marked itself asleep (committed) may sleep only if, read in this order, no floor is held and then
-- the sequence's top is what it has delivered up to: a writer that read "awake" took its floor before that read,
-- so it is either still holding it, or has drawn its ids (the top has moved) or has drawn none.
CREATE FUNCTION journal_may_sleep(delivered bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    held boolean;
    top bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'journal_may_sleep must run under READ COMMITTED, not %', current_setting('transaction_isolation');
    END IF;
    SELECT EXISTS (
        SELECT 1 FROM pg_locks AS l
        WHERE l.locktype = 'advisory' AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND ((l.classid::bigint >> 16) = 19014 OR (l.classid = 1246907980::oid AND l.objid = 1::oid))
    ) INTO held;
    SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END INTO top FROM events_id_seq;
    RETURN NOT held AND top <= delivered;
END
$$;
