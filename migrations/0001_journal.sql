-- The event journal: see docs/20_EVENT_JOURNAL.md. Applied by `journal migrate` in one transaction.

CREATE SEQUENCE events_id_seq AS bigint;

CREATE TABLE events (
    id          bigint PRIMARY KEY,
    ts          timestamptz NOT NULL DEFAULT now(),
    type        text COLLATE "C" NOT NULL,
    level       text NOT NULL DEFAULT 'info',
    public_safe boolean NOT NULL DEFAULT false,
    symbol      text,
    trade_id    text,
    payload     jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT events_type_format
        CHECK (length(type) <= 128 AND type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    CONSTRAINT events_level_known
        CHECK (level IN ('debug', 'info', 'warn', 'error', 'critical')),
    CONSTRAINT events_symbol_length
        CHECK (length(symbol) BETWEEN 1 AND 64),
    CONSTRAINT events_trade_id_length
        CHECK (length(trade_id) BETWEEN 1 AND 64),
    CONSTRAINT events_payload_object
        CHECK (jsonb_typeof(payload) = 'object'),
    CONSTRAINT events_payload_size
        CHECK (octet_length(payload::text) <= 262144)
);

ALTER SEQUENCE events_id_seq OWNED BY events.id;

-- Ids in commit order: a transaction draws an id only while holding a transaction-scoped advisory lock, so it
-- cannot draw one until every transaction that drew a smaller id has committed or rolled back.
CREATE FUNCTION events_assign_id() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(5355428995221422081);  -- 0x4A524E4C00000001, "JRNL" + 1: used nowhere else
    NEW.id := nextval('events_id_seq');
    RETURN NEW;
END
$$;

CREATE TRIGGER events_assign_id
    BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_assign_id();

-- A wake-up carrying the id only; the table is the truth, the payload never travels in a notification.
CREATE FUNCTION events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events', NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify
    AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_notify();

CREATE FUNCTION events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only: % is not allowed', TG_OP
        USING HINT = 'append a correcting event instead';
END
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

CREATE INDEX events_type_id_idx ON events (type, id);
CREATE INDEX events_symbol_id_idx ON events (symbol, id) WHERE symbol IS NOT NULL;
CREATE INDEX events_trade_id_id_idx ON events (trade_id, id) WHERE trade_id IS NOT NULL;

-- One row: the journal's epoch, made once, so a client can tell this journal from a reset or recreated one.
CREATE TABLE journal_meta (
    singleton  boolean PRIMARY KEY DEFAULT true CONSTRAINT journal_meta_one_row CHECK (singleton),
    epoch      uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO journal_meta DEFAULT VALUES;
