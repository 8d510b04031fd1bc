"""The one place Kafka clients get their connection: bootstrap servers plus transport security.

Every producer, consumer and admin client of the product takes its options from :func:`kafka_options`
(and the Faust workers their credentials from :func:`faust_credentials`), so a broker that requires
TLS, SASL or both is configured once, in the settings: ``BREAKFIX_KAFKA_SECURITY_PROTOCOL``
(PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), ``BREAKFIX_KAFKA_SASL_MECHANISM`` (PLAIN, SCRAM-SHA-256,
SCRAM-SHA-512), ``BREAKFIX_KAFKA_USERNAME``/``BREAKFIX_KAFKA_PASSWORD`` (a secret) and the TLS files
``BREAKFIX_KAFKA_SSL_CAFILE``/``_CERTFILE``/``_KEYFILE``. Each component runs as its own principal (its
own username), so the broker's ACLs can give it exactly the topics it needs (docker-compose.yml).
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.helpers import create_ssl_context

from streams.settings import StreamSettings


def _ssl(s: StreamSettings) -> ssl.SSLContext:
    ctx: ssl.SSLContext = create_ssl_context(
        cafile=s.kafka_ssl_cafile, certfile=s.kafka_ssl_certfile, keyfile=s.kafka_ssl_keyfile
    )
    return ctx


def kafka_options(broker: str | None = None, settings: StreamSettings | None = None) -> dict[str, Any]:
    """aiokafka keyword arguments: ``broker`` (default the settings') and the settings' security
    (default: read from the environment)."""
    s = settings or StreamSettings()
    protocol = s.kafka_security_protocol
    opts: dict[str, Any] = {"bootstrap_servers": broker or s.broker, "security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        opts["ssl_context"] = _ssl(s)
    if protocol.startswith("SASL"):
        if not (s.kafka_sasl_mechanism and s.kafka_username and s.kafka_password):
            raise ValueError(
                f"{protocol} needs BREAKFIX_KAFKA_SASL_MECHANISM, BREAKFIX_KAFKA_USERNAME and "
                "BREAKFIX_KAFKA_PASSWORD (this component's own principal)"
            )
        opts["sasl_mechanism"] = s.kafka_sasl_mechanism
        opts["sasl_plain_username"] = s.kafka_username
        opts["sasl_plain_password"] = s.kafka_password.get_secret_value()
    return opts


def producer(settings: StreamSettings, broker: str | None = None, **kw: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(**kafka_options(broker, settings), **kw)


def consumer(
    settings: StreamSettings, *topics: str, broker: str | None = None, **kw: Any
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, **kafka_options(broker, settings), **kw)


def faust_credentials(settings: StreamSettings) -> Any:
    """Faust's ``broker_credentials`` for the settings' security (None for PLAINTEXT)."""
    from faust.auth import SASLCredentials, SSLCredentials

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return SSLCredentials(_ssl(settings))
    opts = kafka_options(settings.broker, settings)
    return SASLCredentials(
        username=opts["sasl_plain_username"],
        password=opts["sasl_plain_password"],
        mechanism=opts["sasl_mechanism"],
        ssl_context=opts.get("ssl_context"),
    )
