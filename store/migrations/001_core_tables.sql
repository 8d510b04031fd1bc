-- Core audit tables. Every table is a ReplacingMergeTree keyed (ORDER BY) so that a row's id is part
-- of its sorting key: a batch re-delivered by Kafka (at-least-once) collapses to one row per id at
-- merge time, and readers that need exact counts use FINAL (or argMax by id) before a merge ran.
-- non_replicated_deduplication_window makes insert_deduplication_token effective on a plain
-- (non-replicated) server and on chdb, so a retried batch is dropped before it is ever written.
-- $telemetry_ttl / $audit_ttl expand to a TTL clause on ingest time (or nothing: keep forever).

CREATE TABLE IF NOT EXISTS $db.events
(
    id String,
    time DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    type LowCardinality(String),
    source LowCardinality(String),
    node LowCardinality(String),
    replay Bool,
    data String CODEC(ZSTD(3)),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (node, time, type, id)
$telemetry_ttl
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS $db.dead_letters
(
    id String,
    time DateTime64(3, 'UTC'),
    reason LowCardinality(String),
    message String,
    raw String CODEC(ZSTD(3)),
    event_id String,
    event_type LowCardinality(String),
    node String,
    source String,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (reason, node, id)
$telemetry_ttl
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS $db.evidence
(
    id String,
    time DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    node LowCardinality(String),
    gpu Nullable(UInt8),
    domain LowCardinality(String),
    signal LowCardinality(String),
    weight Float32,
    half_life_s Nullable(Float64),
    decisive Bool,
    source LowCardinality(String),
    event_ids Array(String),
    attribution LowCardinality(String),
    detail String CODEC(ZSTD(3)),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (node, time, id)
$telemetry_ttl
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS $db.proposals
(
    id String,
    time DateTime64(3, 'UTC'),
    node LowCardinality(String),
    gpu Nullable(UInt8),
    from_state LowCardinality(String),
    to_state LowCardinality(String),
    trigger LowCardinality(String),
    failure_class LowCardinality(String),
    domain LowCardinality(String),
    confidence Float64,
    action LowCardinality(String),
    reasons Array(String),
    evidence Array(String),
    evidence_time DateTime64(3, 'UTC'),
    pool LowCardinality(String),
    rack LowCardinality(String),
    sku LowCardinality(String),
    gpus UInt16,
    job String,
    replay Bool,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (node, time, id)
$audit_ttl
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS $db.decisions
(
    id String,
    time DateTime64(3, 'UTC'),
    node LowCardinality(String),
    gpu Nullable(UInt8),
    from_state LowCardinality(String),
    to_state LowCardinality(String),
    trigger LowCardinality(String),
    failure_class LowCardinality(String),
    confidence Float64,
    action LowCardinality(String),
    mode LowCardinality(String),
    executable Bool,
    reasons Array(String),
    evidence Array(String),
    guard String CODEC(ZSTD(3)),
    guard_failed Array(LowCardinality(String)),
    policy_version LowCardinality(String),
    incident_id String,
    stale Bool,
    replay Bool,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (node, time, id)
$audit_ttl
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS $db.actions
(
    id String,
    time DateTime64(3, 'UTC'),
    kind LowCardinality(String),
    decision_id String,
    node LowCardinality(String),
    gpu Nullable(UInt8),
    action LowCardinality(String),
    step LowCardinality(String),
    status LowCardinality(String),
    validation LowCardinality(String),
    initiator LowCardinality(String),
    playbook LowCardinality(String),
    playbook_version LowCardinality(String),
    pre_state LowCardinality(String),
    post_state LowCardinality(String),
    detail String CODEC(ZSTD(3)),
    params String CODEC(ZSTD(3)),
    replay Bool,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (node, time, id)
$audit_ttl
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS $db.audit
(
    id String,
    time DateTime64(3, 'UTC'),
    actor LowCardinality(String),
    role LowCardinality(String),
    initiator LowCardinality(String),
    surface LowCardinality(String),
    action LowCardinality(String),
    target String,
    allowed Bool,
    status Nullable(Int32),
    detail String CODEC(ZSTD(3)),
    params String CODEC(ZSTD(3)),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (actor, time, id)
$audit_ttl
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS $db.control
(
    id String,
    time DateTime64(3, 'UTC'),
    kind LowCardinality(String),
    scope String,
    key String,
    value String,
    actor LowCardinality(String),
    role LowCardinality(String),
    reason String,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (key, time, id)
$audit_ttl
SETTINGS non_replicated_deduplication_window = 1000;
