-- Telemetry ingest inside ClickHouse: the sink inserts the raw Kafka values of breakfix.events (the
-- published JSON envelopes, untouched) with their Kafka coordinates into events_ingest, and the
-- views below check and map them in one pass: usable envelopes become events rows (and actions rows
-- for action.result), the rest dead_letters rows that say why. Python does no per-record work.
--
-- Both staging tables are Null engines: they keep nothing, they only feed their views. Inserts carry
-- insert_deduplication_token with deduplicate_blocks_in_dependent_materialized_views, so a retried
-- batch is dropped by every target table; a batch cut differently collapses by id (ReplacingMergeTree).
--
-- A string id or type is confirmed by finding it quoted after its key in the raw text, and by a
-- second parse only where that fails (escapes, spaces): the checks cost one JSON parse per record.
-- The checks, in order (the first failing one is the dead letter's message):
--   the value is a JSON object; "id" and "type" are non-empty JSON strings; "time" is an RFC 3339
--   date-time with a UTC offset (Z or +hh:mm). node and source are strings or absent; data is kept as
--   its (minified) JSON text, "null" when absent; node, source and replay are read as ClickHouse
--   reads a JSON scalar into String or Bool (absent: '' and false).
-- Dead-letter ids hash reason, source and raw exactly like rows.unparseable_row, so a redelivered
-- rejection collapses too.

CREATE TABLE IF NOT EXISTS $db.events_ingest
(
    raw String,
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    received_ms Int64
)
ENGINE = Null;

CREATE TABLE IF NOT EXISTS $db.events_checked
(
    raw String,
    source String,
    received DateTime64(3, 'UTC'),
    problem String,
    event_id String,
    event_type String,
    event_time DateTime64(3, 'UTC'),
    node String,
    producer String,
    replay Bool,
    data String
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.events_checked_mv TO $db.events_checked AS
WITH
    JSONExtract(raw, 'Tuple(id String, type String, time String, node String, source String, replay Bool, data String)') AS e,
    e.id != '' AND (position(raw, concat('"id":"', e.id, '"')) > 0 OR JSONType(raw, 'id') = 'String') AS id_ok,
    e.type != '' AND (position(raw, concat('"type":"', e.type, '"')) > 0 OR JSONType(raw, 'type') = 'String') AS type_ok,
    parseDateTime64BestEffortOrNull(e.time, 3, 'UTC') AS parsed_time,
    parsed_time IS NOT NULL AND match(e.time, '^\\d{4}-\\d\\d-\\d\\d[Tt ]\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?([Zz]|[+-]\\d\\d:?\\d\\d)$$') AS time_ok
SELECT
    raw,
    concat(topic, '/', toString(partition), '@', toString(offset)) AS source,
    fromUnixTimestamp64Milli(received_ms, 'UTC') AS received,
    multiIf(
        id_ok AND type_ok AND time_ok, '',
        NOT startsWith(trimLeft(raw), '{') OR NOT isValidJSON(raw), 'message is not a JSON object',
        NOT (id_ok AND type_ok), 'envelope needs string ''id'' and ''type''',
        'time must be an RFC 3339 string with a UTC offset'
    ) AS problem,
    if(id_ok, e.id, '') AS event_id,
    if(type_ok, e.type, '') AS event_type,
    ifNull(parsed_time, toDateTime64(0, 3, 'UTC')) AS event_time,
    e.node AS node,
    e.source AS producer,
    e.replay AS replay,
    if(e.data = '', 'null', e.data) AS data
FROM $db.events_ingest;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.events_accepted_mv TO $db.events AS
SELECT event_id AS id, event_time AS time, event_type AS type, producer AS source, node, replay, data
FROM $db.events_checked
WHERE problem = '';

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.events_rejected_mv TO $db.dead_letters AS
SELECT
    concat('dl-', substring(lower(hex(SHA256(concat('sink_rejected', '\0', source, '\0', raw)))), 1, 24)) AS id,
    received AS time, 'sink_rejected' AS reason, problem AS message, raw, event_id, event_type, node, source
FROM $db.events_checked
WHERE problem != '';

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.action_results_mv TO $db.actions AS
WITH JSONExtract(data, 'Tuple(decision_id Dynamic, gpu Dynamic, action Dynamic, step Dynamic, status Dynamic, validation Dynamic, initiator Dynamic, playbook Dynamic, playbook_version Dynamic, pre_state Dynamic, post_state Dynamic, detail Dynamic)') AS d
SELECT
    event_id AS id, event_time AS time, 'result' AS kind, ifNull(toString(d.decision_id), '') AS decision_id, node,
    if(dynamicType(d.gpu) = 'Int64' AND toInt64(d.gpu) BETWEEN 0 AND 255, toUInt8(toInt64(d.gpu)), NULL) AS gpu,
    ifNull(toString(d.action), '') AS action, ifNull(toString(d.step), '') AS step,
    ifNull(toString(d.status), '') AS status, ifNull(toString(d.validation), '') AS validation,
    if(ifNull(toString(d.initiator), '') = '', 'automation', toString(d.initiator)) AS initiator,
    ifNull(toString(d.playbook), '') AS playbook, ifNull(toString(d.playbook_version), '') AS playbook_version,
    ifNull(toString(d.pre_state), '') AS pre_state, ifNull(toString(d.post_state), '') AS post_state,
    ifNull(toString(d.detail), '') AS detail, '{}' AS params, replay
FROM $db.events_checked
WHERE problem = '' AND event_type = 'action.result' AND startsWith(data, '{');
