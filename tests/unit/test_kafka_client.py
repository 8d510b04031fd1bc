"""One Kafka client factory (streams/kafka/client.py): security from the settings, used everywhere."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr

from streams.kafka.client import faust_credentials, kafka_options
from streams.settings import StreamSettings

REPO = Path(__file__).resolve().parents[2]


def test_plaintext_by_default() -> None:
    opts = kafka_options(settings=StreamSettings(broker="k:9092"))
    assert opts == {"bootstrap_servers": "k:9092", "security_protocol": "PLAINTEXT"}
    assert faust_credentials(StreamSettings()) is None


def test_sasl_ssl_carries_the_principal_and_a_tls_context() -> None:
    s = StreamSettings(
        broker="k:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_username="guard",
        kafka_password=SecretStr("s3cret"),
    )
    opts = kafka_options(settings=s)
    assert opts["security_protocol"] == "SASL_SSL" and opts["sasl_mechanism"] == "SCRAM-SHA-512"
    assert opts["sasl_plain_username"] == "guard" and opts["sasl_plain_password"] == "s3cret"
    assert isinstance(opts["ssl_context"], ssl.SSLContext)
    assert "s3cret" not in repr(s), "the password is a secret in the settings"
    creds = faust_credentials(s)
    assert creds.username == "guard" and creds.mechanism.value == "SCRAM-SHA-512"


def test_sasl_without_credentials_is_refused_naming_the_settings() -> None:
    with pytest.raises(ValueError, match="BREAKFIX_KAFKA_USERNAME"):
        kafka_options(settings=StreamSettings(kafka_security_protocol="SASL_PLAINTEXT"))


def test_every_product_kafka_client_takes_its_connection_from_the_factory() -> None:
    """No producer, consumer or admin client of the product names its bootstrap servers itself (the
    node agent and its transport are handed the factory's options by their callers)."""
    offenders = [
        str(p.relative_to(REPO))
        for pkg in ("streams", "store", "agents", "sim", "breakfix", "actuators")
        for p in (REPO / pkg).rglob("*.py")
        if "bootstrap_servers=" in p.read_text() and p.name != "kafka_client.py"
    ]
    assert offenders == []
