"""What the node agent can do to a node's GPUs, behind one Protocol: the real NVIDIA implementation
(NVML through pynvml, ``nvidia-smi -r`` for resets, ``dcgmi diag``) and a simulated one for tests and
``--simulate``. The agent itself never knows which it drives.

pynvml (nvidia-ml-py) exposes no GPU-reset call, so a reset goes through ``nvidia-smi -r -i N``,
after NVML confirms no compute process still holds the GPU (the reset would fail, or worse).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from actuators.base import PermanentError
from actuators.commands import CommandOutput, CommandRunner
from agents.nodeagent.bundle import collect_bundle

DIAG_LEVELS = (1, 2, 3, 4)


class NoGpuError(RuntimeError):
    """This host has no usable NVIDIA GPU (no driver, no NVML, or zero devices)."""


@dataclass(frozen=True)
class DiagReport:
    passed: bool
    level: int
    failures: tuple[str, ...] = ()
    detail: str = ""
    tests: dict[str, str] = field(default_factory=dict)


class GpuOps(Protocol):
    def count(self) -> int: ...

    def busy_pids(self, index: int) -> list[int]:
        """Compute processes on GPU ``index`` (a reset must not pull a GPU from under them)."""
        ...

    def stop_processes(self, index: int) -> list[int]:
        """SIGTERM the compute processes on GPU ``index``; returns their pids."""
        ...

    def reset(self, index: int, timeout_s: float) -> str: ...

    def diag(self, level: int, timeout_s: float) -> DiagReport: ...

    def bundle(self, dest: Path, sections: list[str], timeout_s: float) -> Path: ...

    def reboot(self, timeout_s: float) -> str: ...


def parse_dcgmi(level: int, stdout: str, returncode: int) -> DiagReport:
    """``dcgmi diag -r N -j`` → report. The JSON layout differs between DCGM 3 and 4, so this walks
    it for any object with a ``status`` and the nearest test ``name``; any ``Fail`` fails the run."""
    tests: dict[str, str] = {}

    def walk(node: Any, name: str) -> None:
        if isinstance(node, dict):
            here = str(node.get("name") or node.get("test_name") or name)
            status = node.get("status")
            if isinstance(status, str):
                worst = tests.get(here)
                tests[here] = status if worst is None or status.lower() == "fail" else worst
            for v in node.values():
                walk(v, here)
        elif isinstance(node, list):
            for v in node:
                walk(v, name)

    try:
        walk(json.loads(stdout), "diag")
    except json.JSONDecodeError:
        tests = {}
    failures = tuple(sorted(n for n, s in tests.items() if s.lower() == "fail"))
    passed = returncode == 0 and not failures
    summary = f"dcgmi diag -r {level}: " + (
        "passed" if passed else f"failed {', '.join(failures) or f'(exit {returncode})'}"
    )
    return DiagReport(passed=passed, level=level, failures=failures, detail=summary, tests=tests)


class NvidiaGpuOps:
    """The real GPUs of this host. :meth:`detect` raises :class:`NoGpuError` where there are none."""

    def __init__(self, runner: CommandRunner, nvml: Any) -> None:
        self.runner = runner
        self.nvml = nvml

    @classmethod
    def detect(cls, runner: CommandRunner) -> NvidiaGpuOps:
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except Exception as err:  # NVMLError, missing libnvidia-ml.so, no driver
            raise NoGpuError(f"NVML is not usable on this host ({err})") from err
        if count < 1:
            raise NoGpuError("NVML reports no GPU on this host")
        return cls(runner, pynvml)

    def count(self) -> int:
        return int(self.nvml.nvmlDeviceGetCount())

    def busy_pids(self, index: int) -> list[int]:
        handle = self.nvml.nvmlDeviceGetHandleByIndex(index)
        return [int(p.pid) for p in self.nvml.nvmlDeviceGetComputeRunningProcesses(handle)]

    def stop_processes(self, index: int) -> list[int]:
        pids = self.busy_pids(index)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        return pids

    def reset(self, index: int, timeout_s: float) -> str:
        out = self.runner.run(["nvidia-smi", "-r", "-i", str(index)], timeout_s)
        if not out.ok:
            raise PermanentError(f"GPU {index} reset failed: {out.describe()}")
        return f"GPU {index} reset ({out.stdout.strip().splitlines()[-1] if out.stdout.strip() else 'ok'})"

    def diag(self, level: int, timeout_s: float) -> DiagReport:
        out = self.runner.run(["dcgmi", "diag", "-r", str(level), "-j"], timeout_s)
        if out.returncode != 0 and not out.stdout.strip():
            raise PermanentError(f"dcgmi diag could not run: {out.describe()}")
        return parse_dcgmi(level, out.stdout, out.returncode)

    def bundle(self, dest: Path, sections: list[str], timeout_s: float) -> Path:
        return collect_bundle(self.runner, dest, sections, timeout_s)

    def reboot(self, timeout_s: float) -> str:
        # One minute's delay: the agent reports the result before the host goes down.
        out = self.runner.run(["shutdown", "-r", "+1", "breakfix node-agent reboot"], timeout_s)
        if not out.ok:
            raise PermanentError(f"reboot refused by the host: {out.describe()}")
        return "reboot scheduled in 1 minute"


class SimulatedGpuOps:
    """A node with ``gpus`` simulated GPUs. ``broken`` GPUs fail reset and diag; ``busy`` holds pids.
    Records every call, so tests assert what was (and was not) done."""

    def __init__(
        self, gpus: int = 8, broken: set[int] | None = None, busy: dict[int, list[int]] | None = None
    ):
        self.gpus = gpus
        self.broken = set(broken or ())
        self.busy = dict(busy or {})
        self.calls: list[tuple[str, Any]] = []

    def count(self) -> int:
        return self.gpus

    def busy_pids(self, index: int) -> list[int]:
        return list(self.busy.get(index, []))

    def stop_processes(self, index: int) -> list[int]:
        self.calls.append(("stop_processes", index))
        return self.busy.pop(index, [])

    def reset(self, index: int, timeout_s: float) -> str:
        self.calls.append(("reset", index))
        if index in self.broken:
            raise PermanentError(f"GPU {index} reset failed: simulated GPU stays fallen off the bus")
        return f"GPU {index} reset (simulated)"

    def diag(self, level: int, timeout_s: float) -> DiagReport:
        self.calls.append(("diag", level))
        fails = tuple(f"gpu{i}:memory" for i in sorted(self.broken))
        return DiagReport(
            passed=not fails,
            level=level,
            failures=fails,
            detail=f"simulated dcgmi diag -r {level}: "
            + ("passed" if not fails else f"failed {', '.join(fails)}"),
        )

    def bundle(self, dest: Path, sections: list[str], timeout_s: float) -> Path:
        self.calls.append(("bundle", tuple(sections)))
        return collect_bundle(_CannedRunner(), dest, sections, timeout_s)

    def reboot(self, timeout_s: float) -> str:
        self.calls.append(("reboot", None))
        self.broken.clear()  # a reboot clears what a reset could not, in this simulation
        return "reboot (simulated)"


class _CannedRunner:
    """Answers every bundle command with a line saying it was simulated (no host command runs)."""

    def run(self, argv: Sequence[str], timeout_s: float) -> CommandOutput:
        return CommandOutput(tuple(argv), 0, f"simulated output of `{' '.join(argv)}`\n", "")
