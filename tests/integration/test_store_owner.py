"""Two real processes and one embedded store directory: the second is refused in one line naming the
owner (never a chdb traceback, never a second engine on the same files), and once the owner closes
the store the directory is free again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from store.owner import OWNER_FILE, claim

pytestmark = pytest.mark.integration
EXE = str(Path(sys.executable).with_name("breakfix"))

HOLDER = """
import sys
from store.dsn import open_store
from store.migrate import migrate
store = open_store(sys.argv[1])
migrate(store)
print("ready", flush=True)
sys.stdin.readline()  # hold the store until the test says so
store.command("INSERT INTO breakfix.audit (id) VALUES ('after-refusal')")
store.close()
print("closed", flush=True)
"""


PROBE = """
import sys
from store.owner import StoreInUse, claim
try:
    claim(sys.argv[1])
except StoreInUse as refused:
    print(refused, refused.hint)
    raise SystemExit(3)
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BREAKFIX_")}


def test_a_second_process_is_refused_with_the_owner_and_the_store_stays_whole(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'chdb'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, dsn],
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "ready"
        second = subprocess.run(
            [EXE, "sql", "--store", dsn, "SELECT count() FROM breakfix.audit"],
            env=_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        err = second.stderr.strip()
        assert second.returncode != 0 and "Traceback" not in err and len(err.splitlines()) <= 2, err
        assert f"pid {holder.pid}" in err and "in use" in err and "--store" in err, err
        holder.stdin.write("go\n")  # the owner still writes after the refusal: nothing broke
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "closed"
        assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()
        holder.wait()
    after = subprocess.run(
        [EXE, "sql", "--store", dsn, "SELECT id FROM breakfix.audit"],
        env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert after.returncode == 0 and "after-refusal" in after.stdout, after.stderr


def test_the_guard_is_counted_within_a_process_and_released_with_the_last_holder(tmp_path: Path) -> None:
    first, second = claim(tmp_path, served="http://127.0.0.1:1"), claim(tmp_path)
    probe = [sys.executable, "-c", PROBE, str(tmp_path)]
    held = subprocess.run(probe, env=_env(), capture_output=True, text=True, timeout=60)
    assert held.returncode == 3 and f"pid {os.getpid()}" in held.stdout, held.stdout + held.stderr
    assert "its ClickHouse HTTP endpoint http://127.0.0.1:1" in held.stdout
    first()
    first()  # a release is spent once
    assert subprocess.run(probe, env=_env(), capture_output=True, timeout=60).returncode != 0
    second()
    assert subprocess.run(probe, env=_env(), capture_output=True, timeout=60).returncode == 0
    assert (tmp_path / OWNER_FILE).exists()
