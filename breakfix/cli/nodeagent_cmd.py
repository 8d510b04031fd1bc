"""``breakfix node-agent``: run on a GPU node, execute its commands, report results.

Without a usable NVIDIA GPU (no driver, NVML, or devices) it refuses to start unless ``--simulate``
is given, so a misplaced agent can never claim to have reset or diagnosed a GPU it cannot see.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from pathlib import Path

import typer

from actuators.commands import SubprocessRunner
from actuators.nodeagent.agent import ACTIONS, NodeAgent
from actuators.nodeagent.gpu import GpuOps, NoGpuError, NvidiaGpuOps, SimulatedGpuOps
from actuators.nodeagent.journal import RequestJournal
from actuators.nodeagent.loop import AgentKeys, run_agents
from breakfix.cli.common import err_console, fail, print_json
from schemas.signing import SigningError
from streams.kafka_client import kafka_options
from streams.keys import load_keyring, load_signer
from streams.settings import StreamSettings


def node_agent(
    node: list[str] = typer.Option(
        ..., "--node", help="This node's id, as the pipeline knows it (repeat with --simulate: one process "
        "plays several simulated nodes, as `breakfix up` runs them)."
    ),
    simulate: bool = typer.Option(False, "--simulate", help="Drive simulated GPUs instead of NVML/dcgmi."),
    gpus: int = typer.Option(8, "--gpus", min=1, max=64, help="With --simulate: how many GPUs to simulate."),
    broker: str | None = typer.Option(
        None, "--broker", help="Kafka bootstrap (default: BREAKFIX_BROKER or 127.0.0.1:9092)."
    ),
    bundle_dir: Path | None = typer.Option(
        None, "--bundle-dir", help="Where diagnostic bundles are written."
    ),
    max_age_s: float = typer.Option(900.0, "--max-age", help="Refuse commands older than this (seconds)."),
    state_dir: Path = typer.Option(
        Path("/var/lib/breakfix-agent"),
        "--state-dir",
        help="The request journal (kept across the reboots the agent performs): local disk, not tmpfs.",
    ),
    exit_after: int | None = typer.Option(None, "--exit-after", help="Stop after handling N commands."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print each result as JSON."),
) -> None:
    """Consume this node's commands from breakfix.commands and publish action.result events.

    Actions: gpu_reset, reboot, dcgm_diag, collect_bundle, cleanup_stale.

    Example: breakfix node-agent --node gpu-a-0001 --broker kafka:9092
    Example (no GPU here): breakfix node-agent --simulate --node gpu-a-0001 --node gpu-a-0002
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    if len(node) > 1 and not simulate:
        fail("one agent per host: several --node need --simulate", "run a `breakfix node-agent` on each node")
    ops: GpuOps
    if simulate:
        ops = SimulatedGpuOps(gpus=gpus)
    else:
        try:
            ops = NvidiaGpuOps.detect(SubprocessRunner())
        except NoGpuError as err:
            fail(
                f"no GPU to act on: {err}",
                "run the agent on a GPU node with the NVIDIA driver, or pass --simulate to exercise "
                "the command path against simulated GPUs",
            )
    settings = StreamSettings()
    try:  # commands must carry the actuator stage's seal; answers carry this agent's
        keys = AgentKeys(load_signer(settings, "agent"), load_keyring(settings))
    except SigningError as err:
        fail(str(err), "an agent needs an 'agent' key (per pool or per node) and the fleet's trust file")
    agents = [
        NodeAgent(
            name,
            ops if len(node) == 1 else SimulatedGpuOps(gpus=gpus),
            bundle_dir or Path(tempfile.gettempdir()) / "breakfix-bundles",
            max_age_s=max_age_s,
            journal=RequestJournal(state_dir / f"requests-{name}.sqlite"),
        )
        for name in node
    ]
    kind = "simulated" if simulate else "NVIDIA"
    names = node[0] if len(node) == 1 else f"{node[0]} and {len(node) - 1} more simulated node(s)"
    err_console.print(
        f"node-agent {names}: {ops.count()} {kind} GPU(s) each, actions {', '.join(sorted(ACTIONS))}, "
        f"broker {broker or settings.broker}"
    )
    with contextlib.suppress(KeyboardInterrupt):
        handled = asyncio.run(
            run_agents(
                agents,
                broker or settings.broker,
                keys,
                settings.topic_prefix,
                exit_after=exit_after,
                on_result=print_json if verbose else None,
                kafka=kafka_options(broker or settings.broker, settings),
            )
        )
        err_console.print(
            f"node-agent {names}: handled {handled} command(s), refused {keys.refused or 'none'}"
        )


def register(app: typer.Typer) -> None:
    app.command("node-agent")(node_agent)
