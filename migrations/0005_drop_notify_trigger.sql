-- Drop 0001's per-row NOTIFY trigger. Since 0003 its function does nothing (writers notify from events_assign_id,
-- once per transaction and only while a hub sleeps), yet PostgreSQL still queues and fires it for every row.
-- See docs/20_EVENT_JOURNAL.md#notify-and-waking-the-stream-only-when-it-sleeps ("The old per-row trigger").
--
-- DROP TRIGGER takes an ACCESS EXCLUSIVE lock on events: it waits for every open transaction that touched the table,
-- and every writer and reader that comes after it waits behind it. So each attempt waits at most 50 ms for the lock
-- (the longest it can hold the engine up), and an attempt that times out is undone and tried again 0.2 s later, 20
-- times in all. A table that is never free for 50 ms in those 5 s (a long or a prepared transaction that wrote
-- events) makes the migration fail, changing nothing; running `journal migrate` again tries again.
DO $$
BEGIN
    PERFORM set_config('lock_timeout', '50ms', true);
    FOR attempt IN 1..20 LOOP
        BEGIN
            DROP TRIGGER IF EXISTS events_notify ON events;
            RETURN;
        EXCEPTION WHEN lock_not_available THEN
            PERFORM pg_sleep(0.2);
        END;
    END LOOP;
    RAISE EXCEPTION 'could not drop the trigger events_notify: events was never free for 50 ms in 20 tries over 5 s'
        USING HINT = 'a long or prepared transaction that wrote events holds it (see pg_locks); end it, or run '
                     '`journal migrate` again at a quieter moment';
END
$$;

DROP FUNCTION events_notify();
