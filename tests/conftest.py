"""Session fixtures every test family uses: a real Tansu broker, an embedded chdb store, unique names.

Real components start once per session (they are slow to start, cheap to share) and every test gets
its own topic/group/database names so tests never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.kafka.embedded_broker import EmbeddedBroker

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "breakfix" / "data" / "sample.jsonl"

# Fixture modules registered once, here: a per-module registration imports them before pytest can
# rewrite their asserts.
pytest_plugins = ["tests.fixtures.slurm"]


@pytest.fixture(scope="session", autouse=True)
def signing_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One key per role for the whole session (`breakfix keys create`'s single-host layout), found by
    every component and every process a test starts through ``BREAKFIX_KEYS_DIR``."""
    from streams.keys import create_all

    keys = tmp_path_factory.mktemp("keys")
    create_all(keys)
    before = os.environ.get("BREAKFIX_KEYS_DIR")
    os.environ["BREAKFIX_KEYS_DIR"] = str(keys)
    yield keys
    if before is None:
        os.environ.pop("BREAKFIX_KEYS_DIR", None)
    else:
        os.environ["BREAKFIX_KEYS_DIR"] = before


@pytest.fixture(scope="session")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One real Tansu broker (memory storage) on a free loopback port for the whole session."""
    with EmbeddedBroker(log_dir=tmp_path_factory.mktemp("tansu")) as broker:
        yield broker


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic, group and database names."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chdb allows one data path per process, so the whole session shares one and tests use databases."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def chdb_client(chdb_path: Path) -> Iterator[Any]:
    """A clickhouse-connect client on embedded chdb (clickhouse-connect's own chdb backend)."""
    import clickhouse_connect

    client = clickhouse_connect.get_client(dsn=f"chdb:///{chdb_path}")
    yield client
    client.close()


@pytest.fixture
def chdb_database(chdb_client: Any, unique: str) -> Iterator[str]:
    name = f"t_{unique}"
    chdb_client.command(f"CREATE DATABASE {name}")
    yield name
    chdb_client.command(f"DROP DATABASE IF EXISTS {name}")
