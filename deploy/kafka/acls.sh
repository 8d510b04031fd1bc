#!/bin/sh
# One ACL set per Kafka principal of the compose stack: what each component reads, writes and which
# consumer group it joins, nothing more (the broker refuses whatever no ACL allows). Run once by the
# `kafka-acls` job as the super user `admin`; safe to re-run (--add is idempotent).
#
# Content authentication is separate and still applies: decisions, commands, answers, levers and
# lifecycle inputs are signed (docs/security/signed-path.md), so even a principal allowed to write a
# topic cannot make the product act with a message its key did not sign.
set -eu
CFG=/tmp/admin.properties
cat > "$CFG" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
ssl.truststore.type=PEM
ssl.truststore.location=/etc/kafka/tls/ca.pem
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${BROKER_ADMIN_PASSWORD}";
PROPS
acl() {
  /opt/kafka/bin/kafka-acls.sh --bootstrap-server kafka:9092 --command-config "$CFG" --add --force "$@"
}

# worker: the node stage and the guard (one Faust app, group = app id `breakfix`).
acl --allow-principal User:worker --operation Read --topic breakfix.events --topic breakfix.decisions --topic breakfix.proposals --topic breakfix.control
acl --allow-principal User:worker --operation Write --topic breakfix.proposals --topic breakfix.decisions --topic breakfix.evidence --topic breakfix.deadletter
acl --allow-principal User:worker --operation All --resource-pattern-type prefixed --topic breakfix-
acl --allow-principal User:worker --operation Read --group breakfix

# actuators: decisions and levers in, workflow results and node-agent commands out.
acl --allow-principal User:actuators --operation Read --topic breakfix.decisions --topic breakfix.control --topic breakfix.events
acl --allow-principal User:actuators --operation Write --topic breakfix.events --topic breakfix.commands --topic breakfix.deadletter
acl --allow-principal User:actuators --operation Read --group breakfix-actuators

# agent: `breakfix node-agent` on the GPU nodes (one group per node).
acl --allow-principal User:agent --operation Read --topic breakfix.commands
acl --allow-principal User:agent --operation Write --topic breakfix.events --topic breakfix.deadletter
acl --allow-principal User:agent --operation Read --resource-pattern-type prefixed --group breakfix-node-agent-

# api: the levers' only writer; tenant reports, repair status, audit records, and an approved repair
# plan's steps for the guard (breakfix.proposals, header breakfix-kind: operator, API-signed).
acl --allow-principal User:api --operation Write --topic breakfix.control --topic breakfix.events --topic breakfix.audit --topic breakfix.proposals
acl --allow-principal User:api --operation Read --topic breakfix.control --topic breakfix.events

# sink: everything it stores, read-only.
acl --allow-principal User:sink --operation Read --topic breakfix.events --topic breakfix.deadletter --topic breakfix.evidence --topic breakfix.decisions --topic breakfix.commands --topic breakfix.audit --topic breakfix.control
acl --allow-principal User:sink --operation Read --group breakfix-sink
