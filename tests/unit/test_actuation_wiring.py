"""The shared actuator wiring: only configured kinds are registered, the rest are named with the
option that configures them; a request the operator cannot mean is refused at start-up; the site's
test workload command and the symptom feed behave as validation needs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from actuators.registry import hints
from actuators.validation import Validator
from breakfix.actuation import ActuationConfigError, ActuatorOptions, build_actuators
from breakfix.actuation.symptoms import SymptomLog
from breakfix.actuation.workload import CommandWorkload


def test_only_configured_kinds_are_registered_and_the_rest_say_how(tmp_path: Path) -> None:
    wired = build_actuators(ActuatorOptions(tickets_dir=tmp_path / "t", machines_dir=tmp_path / "m"))
    assert wired.kinds == ["health_override", "ticket", "validate"]
    assert set(wired.unconfigured) == {"kubernetes", "slurm", "node_agent", "nico"}
    assert wired.unconfigured["kubernetes"] == hints()["kubernetes"] and "--kube-url" in hints()["kubernetes"]
    assert any("symptom feed" in n for n in wired.notes), "no broker: the quiet window cannot pass"
    validator = next(a for a in wired.actuators if isinstance(a, Validator))
    assert validator.agent is None and validator.symptoms is None


def test_kubernetes_by_url_gives_validation_its_capacity_check() -> None:
    wired = build_actuators(ActuatorOptions(kube_url="http://127.0.0.1:1"), strict=True)
    assert wired.kinds == ["kubernetes", "validate"]
    validator = next(a for a in wired.actuators if isinstance(a, Validator))
    assert validator.capacity is not None


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (ActuatorOptions(kube_url="http://x", slurm=True), "one scheduler per actuator stage"),
        (ActuatorOptions(node_agent=True), "needs --broker"),
        (ActuatorOptions(jira_url="https://jira.example"), "--jira needs --jira-project"),
        (ActuatorOptions(jira_url="https://j", jira_project="OPS", tickets_dir=Path("t")), "not both"),
    ],
)
def test_impossible_requests_fail_at_start_up(opts: ActuatorOptions, message: str) -> None:
    with pytest.raises(ActuationConfigError, match=message):
        build_actuators(opts)


def test_a_kind_that_cannot_be_built_is_fatal_when_strict_and_a_note_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a host without the SLURM client tools
    missing = ActuatorOptions(slurm=True)
    with pytest.raises(ActuationConfigError, match="slurm actuator: `squeue` is not installed"):
        build_actuators(missing, strict=True)
    lenient = build_actuators(missing, strict=False)
    assert "slurm" not in lenient.kinds and "slurm" in lenient.unconfigured
    assert any(n.startswith("slurm actuator not registered") for n in lenient.notes)


def test_workload_command_fills_node_and_gpu_and_judges_by_exit_status(tmp_path: Path) -> None:
    log = tmp_path / "ran"
    ok, detail = CommandWorkload(f"sh -c 'echo {{node}} {{gpu}} > {log}'").run("n1", 3, 10)
    assert ok and "passed" in detail and log.read_text().split() == ["n1", "3"]
    ok, detail = CommandWorkload("sh -c 'echo burn-in failed on {gpu}; exit 3'").run("n1", None, 10)
    assert not ok and "exit 3" in detail and "burn-in failed on all" in detail
    ok, detail = CommandWorkload("/nonexistent/burn-in {node}").run("n1", 0, 10)
    assert not ok and "not installed" in detail


def test_symptom_feed_keeps_the_latest_xid_or_workload_trouble_per_node() -> None:
    feed = SymptomLog()  # what KafkaSymptoms keeps; its consumer is exercised end to end

    def event(type_: str, node: str, minute: int, data: dict[str, object]) -> bytes:
        t = datetime(2026, 11, 23, 10, minute, tzinfo=UTC).isoformat()
        return orjson.dumps(
            {"id": f"{node}{minute}", "type": type_, "source": "t", "time": t, "node": node, "data": data}
        )

    feed.note(event("gpu.xid", "n1", 5, {"gpu": 0, "xid": 79}))
    feed.note(event("gpu.xid", "n1", 2, {"gpu": 0, "xid": 79}))  # older: the latest stays
    feed.note(event("workload.event", "n2", 7, {"kind": "crashloop", "pod": "p"}))
    feed.note(event("node.condition", "n3", 1, {"condition": "Ready", "status": "False"}))
    feed.note(b"not json")
    feed.note(event("gpu.xid", "n4", 1, {"gpu": -5, "xid": "x"}))  # invalid: not a symptom
    assert feed.last_symptom("n1") == datetime(2026, 11, 23, 10, 5, tzinfo=UTC)
    assert feed.last_symptom("n2") == datetime(2026, 11, 23, 10, 7, tzinfo=UTC)
    assert feed.last_symptom("n3") is None and feed.last_symptom("n4") is None


def test_a_shipped_kind_with_a_builder_is_configured_the_generic_way_too() -> None:
    """`--actuator nico=FILE` reaches the same builder as `--nico FILE` (actuators.registry)."""
    with pytest.raises(ActuationConfigError, match="nico actuator: the nico actuator needs its config file"):
        build_actuators(ActuatorOptions(plugins=(("nico", None),), symptoms=False))
    with pytest.raises(ActuationConfigError, match=r"validate.*configured by its own options"):
        build_actuators(ActuatorOptions(plugins=(("validate", None),), symptoms=False))
