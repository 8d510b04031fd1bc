"""The embedded broker removes the log folder it made itself after a clean stop, and keeps it when
leaving on an error (its log is what the user reads next); a folder it was given is never removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.kafka.embedded_broker import EmbeddedBroker

pytestmark = pytest.mark.integration


def test_own_log_folder_is_removed_after_a_clean_stop_and_kept_after_an_error(tmp_path: Path) -> None:
    with EmbeddedBroker() as clean:
        own = clean.log_dir
        assert (own / "tansu.log").exists()
    assert not own.exists()

    failing = EmbeddedBroker()
    with pytest.raises(RuntimeError, match="boom"), failing:
        raise RuntimeError("boom")
    assert (failing.log_dir / "tansu.log").exists()
    failing.log_dir.joinpath("tansu.log").unlink()
    failing.log_dir.rmdir()

    with EmbeddedBroker(log_dir=tmp_path) as given:
        assert given.log_dir == tmp_path
    assert (tmp_path / "tansu.log").exists()
