-- Tables derived from the core ones by materialized views, so the sink writes each fact once.
-- Their targets are ReplacingMergeTree too: a duplicate decision that slipped past insert
-- deduplication produces a duplicate history row that collapses exactly like its source.

CREATE TABLE IF NOT EXISTS $db.node_state_history
(
    node LowCardinality(String),
    time DateTime64(3, 'UTC'),
    decision_id String,
    from_state LowCardinality(String),
    to_state LowCardinality(String),
    failure_class LowCardinality(String),
    action LowCardinality(String),
    mode LowCardinality(String),
    executable Bool,
    replay Bool,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (node, time, decision_id)
$audit_ttl
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.node_state_history_mv TO $db.node_state_history AS
SELECT node, time, id AS decision_id, from_state, to_state, failure_class, action, mode, executable, replay
FROM $db.decisions;

CREATE TABLE IF NOT EXISTS $db.incidents
(
    incident_id String,
    time DateTime64(3, 'UTC'),
    node LowCardinality(String),
    decision_id String,
    failure_class LowCardinality(String),
    action LowCardinality(String),
    to_state LowCardinality(String),
    reasons Array(String),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (incident_id, time, decision_id)
$audit_ttl
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.incidents_mv TO $db.incidents AS
SELECT incident_id, time, node, id AS decision_id, failure_class, action, to_state, reasons
FROM $db.decisions
WHERE incident_id != '' OR action = 'fleet_incident';

-- Placement of each node as its inventory last reported it (pool, rack, SKU, GPU count), for the
-- capacity queries. argMax by time over this table gives the current placement.
CREATE TABLE IF NOT EXISTS $db.node_inventory
(
    node LowCardinality(String),
    time DateTime64(3, 'UTC'),
    event_id String,
    pool LowCardinality(String),
    rack LowCardinality(String),
    sku LowCardinality(String),
    gpus UInt16,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (node, time, event_id)
$telemetry_ttl
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.node_inventory_mv TO $db.node_inventory AS
SELECT node, time, id AS event_id,
       JSONExtractString(data, 'pool') AS pool,
       JSONExtractString(data, 'rack') AS rack,
       JSONExtractString(data, 'sku') AS sku,
       toUInt16(JSONExtractUInt(data, 'gpus')) AS gpus
FROM $db.events
WHERE type = 'node.inventory';
