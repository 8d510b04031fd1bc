"""``breakfix run --role node-agent`` (also ``breakfix node-agent``): on a GPU node, execute its
commands and report the results.

Without a usable NVIDIA GPU (no driver, NVML, or devices) it refuses to start unless ``--simulate``
is given, so a misplaced agent can never claim to have reset or diagnosed a GPU it cannot see.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import typer

from actuators.commands import SubprocessRunner
from actuators.nodeagent.params import ACTIONS
from agents.nodeagent.agent import NodeAgent
from agents.nodeagent.gpu import GpuOps, NoGpuError, NvidiaGpuOps, SimulatedGpuOps
from agents.nodeagent.journal import RequestJournal
from agents.nodeagent.loop import AgentKeys, run_agents
from breakfix.cli.common import err_console, fail, print_json
from breakfix.cli.role_common import PRINT_OPT, SETTINGS_OPT, settle
from breakfix.roles.settings import NodeAgentSettings
from schemas.signing import SigningError
from streams.kafka.client import kafka_options
from streams.keys import load_keyring, load_signer


def node_agent(
    node: list[str] | None = typer.Option(
        None,
        "--node",
        help="This node's id, as the pipeline knows it (required; repeat with --simulate: one process "
        "plays several simulated nodes, as `breakfix up` runs them).",
    ),
    simulate: bool | None = typer.Option(
        None, "--simulate/--no-simulate", help="Drive simulated GPUs instead of NVML/dcgmi."
    ),
    gpus: int | None = typer.Option(
        None, "--gpus", min=1, max=64, help="With --simulate: how many GPUs to simulate (default 8)."
    ),
    broker: str | None = typer.Option(
        None, "--broker", help="Kafka bootstrap (default: BREAKFIX_BROKER or 127.0.0.1:9092)."
    ),
    bundle_dir: Path | None = typer.Option(None, "--bundle-dir", help="Where diagnostic bundles go."),
    max_age_s: float | None = typer.Option(
        None, "--max-age", help="Refuse commands older than this (seconds, default 900)."
    ),
    state_dir: Path | None = typer.Option(
        None,
        "--state-dir",
        help="The request journal (kept across the reboots the agent performs): local disk, not tmpfs "
        "(default /var/lib/breakfix-agent).",
    ),
    exit_after: int | None = typer.Option(None, "--exit-after", help="Stop after handling N commands."),
    verbose: bool | None = typer.Option(None, "--verbose/--quiet", "-v", help="Print each result as JSON."),
    settings_file: Path | None = SETTINGS_OPT,
    print_settings: bool = PRINT_OPT,
) -> None:
    """Consume this node's commands from breakfix.commands and publish action.result events.

    Actions: gpu_reset, reboot, dcgm_diag, collect_bundle, cleanup_stale.

    Example: breakfix run --role node-agent --node gpu-a-0001 --broker kafka:9092
    Example (no GPU here): breakfix node-agent --simulate --node gpu-a-0001 --node gpu-a-0002
    """
    settings = settle(
        NodeAgentSettings,
        settings_file,
        print_settings,
        node=node or None,
        simulate=simulate,
        gpus=gpus,
        broker=broker,
        bundle_dir=bundle_dir,
        max_age_s=max_age_s,
        state_dir=state_dir,
        exit_after=exit_after,
        verbose=verbose,
    )
    if not settings.node:
        fail("no node id", "pass --node NODE (or set BREAKFIX_NODE): the id the pipeline knows this node by")
    nodes, verbose, simulate = settings.node, settings.verbose, settings.simulate
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    if len(nodes) > 1 and not simulate:
        fail("one agent per host: several --node need --simulate", "run a `breakfix node-agent` on each node")
    ops: GpuOps
    if simulate:
        ops = SimulatedGpuOps(gpus=settings.gpus)
    else:
        try:
            ops = NvidiaGpuOps.detect(SubprocessRunner())
        except NoGpuError as err:
            fail(
                f"no GPU to act on: {err}",
                "run the agent on a GPU node with the NVIDIA driver, or pass --simulate to exercise "
                "the command path against simulated GPUs",
            )
    try:  # commands must carry the actuator stage's seal; answers carry this agent's
        keys = AgentKeys(load_signer(settings, "agent"), load_keyring(settings))
    except SigningError as err:
        fail(str(err), "an agent needs an 'agent' key (per pool or per node) and the fleet's trust file")
    agents = [
        NodeAgent(
            name,
            ops if len(nodes) == 1 else SimulatedGpuOps(gpus=settings.gpus),
            settings.bundle_dir or Path(tempfile.gettempdir()) / "breakfix-bundles",
            max_age_s=settings.max_age_s,
            journal=RequestJournal(settings.state_dir / f"requests-{name}.sqlite"),
        )
        for name in nodes
    ]
    kind = "simulated" if simulate else "NVIDIA"
    names = nodes[0] if len(nodes) == 1 else f"{nodes[0]} and {len(nodes) - 1} more simulated node(s)"
    err_console.print(
        f"node-agent {names}: {ops.count()} {kind} GPU(s) each, actions {', '.join(sorted(ACTIONS))}, "
        f"broker {settings.broker}"
    )
    served = run_agents(
        agents,
        settings.broker,
        keys,
        settings.topic_prefix,
        exit_after=settings.exit_after,
        on_result=print_json if verbose else None,
        kafka=kafka_options(settings.broker, settings),
    )
    handled = asyncio.run(_until_signal(served))
    done = "stopped by a signal" if handled is None else f"handled {handled} command(s)"
    err_console.print(f"node-agent {names}: {done}, refused {keys.refused or 'none'}")


async def _until_signal(served: Coroutine[Any, Any, int]) -> int | None:
    """Serve until done or until SIGTERM/SIGINT, which cancel the loop (its consumer and producer
    close on the way out); None when a signal stopped it."""
    task = asyncio.ensure_future(served)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        return None


def register(app: typer.Typer) -> None:
    app.command("node-agent")(node_agent)
