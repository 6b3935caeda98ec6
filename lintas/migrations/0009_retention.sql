-- Retention of the merged store (lintas.consumers.store.retention): rows past their event
-- type's retention lose their personal data (or are deleted). The mark says a raw row is
-- done, so each run only looks at rows it has not handled yet.

ALTER TABLE store.raw_events ADD COLUMN IF NOT EXISTS pseudonymised_at timestamptz;
COMMENT ON COLUMN store.raw_events.pseudonymised_at IS 'When the retention job removed this event''s personal data (NULL: not yet due or not yet done).';

-- The job's lookup: per type, the oldest rows not yet handled (the event time, or when it
-- was stored when the event has none).
CREATE INDEX IF NOT EXISTS raw_events_retention_idx
    ON store.raw_events (event_type, (coalesce(event_time, stored_at)))
    WHERE pseudonymised_at IS NULL;
