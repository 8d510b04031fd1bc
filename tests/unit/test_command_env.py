"""Site commands (scontrol, dcgmi, the validation workload) run without the product's secrets: the
role settings export tokens, the signing key and store DSNs as BREAKFIX_* variables."""

from __future__ import annotations

import sys

import pytest

from actuators.commands import SubprocessRunner


def test_a_real_child_sees_none_of_the_products_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BREAKFIX_API_TOKENS", "alice:admin:s3cret-token")
    monkeypatch.setenv("BREAKFIX_SIGNING_KEY", "private-key-material")
    monkeypatch.setenv("SITE_SETTING", "kept")
    runner = SubprocessRunner({"SLURM_CONF": "/etc/slurm/slurm.conf"})
    out = runner.run([sys.executable, "-c", "import os; print(sorted(os.environ.items()))"], 20)
    assert out.ok, out.describe()
    assert "s3cret-token" not in out.stdout and "private-key-material" not in out.stdout
    assert "BREAKFIX_" not in out.stdout
    assert "('SITE_SETTING', 'kept')" in out.stdout
    assert "('SLURM_CONF', '/etc/slurm/slurm.conf')" in out.stdout
