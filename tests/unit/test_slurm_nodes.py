"""SLURM parsing and ownership rules on controller output recorded from slurmctld 22.05 here, so the
rules are checked even where the SLURM binaries are absent (the integration tests then skip)."""

from __future__ import annotations

import doctest

from actuators.slurm import nodes
from actuators.slurm.nodes import active_jobs_on, decision_of, parse_nodes, reason_for

SINFO = {
    "nodes": [
        {
            "name": "gpu01",
            "state": "mixed",
            "state_flags": ["DRAIN"],
            "reason": "breakfix: d-123 xid79",
            "reason_set_by_user": "root",
            "gres": "gpu:4",
            "gres_used": "gpu:2(IDX:0-1)",
            "boot_time": 1795463803,
        },
        {
            "name": "gpu02",
            "state": "idle",
            "state_flags": ["DRAIN"],
            "reason": "operator maintenance",
            "reason_set_by_user": "root",
            "gres": "gpu:4",
            "gres_used": "gpu:0",
            "boot_time": 1795463803,
        },
        {"name": "gpu03", "state": "idle", "state_flags": [], "reason": "", "gres": "gpu:4", "boot_time": 1},
    ]
}
SQUEUE = {
    "jobs": [
        {"job_id": 1, "job_state": "RUNNING", "job_resources": {"allocated_nodes": [{"nodename": "gpu01"}]}},
        {
            "job_id": 2,
            "job_state": "COMPLETED",
            "job_resources": {"allocated_nodes": [{"nodename": "gpu01"}]},
        },
        {"job_id": 3, "job_state": "RUNNING", "job_resources": {"allocated_nodes": [{"nodename": "gpu011"}]}},
        {"job_id": 4, "job_state": "PENDING", "job_resources": {}},
    ]
}


def test_doctests() -> None:
    assert doctest.testmod(nodes).failed == 0


def test_ownership_is_the_reason_prefix_and_names_the_decision() -> None:
    parsed = parse_nodes(SINFO)
    assert parsed["gpu01"].ours and decision_of(parsed["gpu01"].reason) == "d-123"
    assert not parsed["gpu02"].ours and decision_of("operator: breakfix: d-1") is None
    assert reason_for("d-9", "xid 79\n on  GPU 3") == "breakfix: d-9 xid 79 on GPU 3"
    assert len(reason_for("d-9", "x" * 1000)) == nodes.MAX_REASON


def test_draining_vs_drained_and_active_jobs_by_exact_node_name() -> None:
    parsed = parse_nodes(SINFO)
    jobs = active_jobs_on(SQUEUE, "gpu01")
    assert jobs == [1], "finished jobs and a job on gpu011 do not count"
    assert parsed["gpu01"].drain_phase(len(jobs)) == "DRAINING"
    assert parsed["gpu02"].drain_phase(0) == "DRAINED"
    assert parsed["gpu03"].drain_phase(0) == "-"
    assert (parsed["gpu01"].gpus, parsed["gpu01"].gpus_used) == (4, 2)


def test_slurm_23_documents_keep_flags_in_the_state_list_and_times_as_objects() -> None:
    # Shapes of slurm.schedmd.com/slurmrestd.html's node example (24.11): state is a list of the base
    # state and its flags; times are {"set", "infinite", "number"} objects.
    doc = {
        "nodes": [
            {
                "name": "gpu07",
                "state": ["MIXED", "DRAIN", "REBOOT_REQUESTED"],
                "reason": "breakfix: d-9 xid79",
                "reason_set_by_user": "root",
                "gres": "gpu:h100:8(S:0-1)",
                "gres_used": "gpu:h100:2(IDX:0-1)",
                "boot_time": {"set": True, "infinite": False, "number": 1720820315},
            }
        ]
    }
    n = parse_nodes(doc)["gpu07"]
    assert (n.state, n.flags) == ("MIXED", frozenset({"DRAIN", "REBOOT_REQUESTED"}))
    assert n.drain_flag and n.rebooting and n.ours and n.boot_time == 1720820315
    assert n.drain_phase(active_jobs=1) == "DRAINING" and (n.gpus, n.gpus_used) == (8, 2)
