"""``breakfix up`` / ``breakfix down`` / ``breakfix status``: the whole local stack with one command.

``up`` starts the owner process (:mod:`breakfix.stack.run`) in its own session, waits until it has
written the context file, and returns; ``down`` sends it SIGTERM and waits until every process of
the stack is gone. ``up --foreground`` runs the owner in the terminal instead (Ctrl-C stops it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import typer

from breakfix.cli.common import console, fail
from breakfix.stack.context import context_path, load_context
from store.owner import StoreInUse

DEFAULT_DIR = Path.home() / ".breakfix" / "local"


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _port_free(port: int) -> bool:
    if port == 0:
        return True
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def up(
    dir: Path = typer.Option(
        DEFAULT_DIR, "--dir", envvar="BREAKFIX_UP_DIR", help="Store, state and logs of the stack."
    ),
    broker_port: int = typer.Option(
        9092, "--broker-port", min=1, max=65535, envvar="BREAKFIX_UP_BROKER_PORT", help="Embedded Kafka port."
    ),
    api_port: int = typer.Option(
        8080, "--api-port", min=1, max=65535, envvar="BREAKFIX_UP_API_PORT", help="Operator API port."
    ),
    store_port: int = typer.Option(
        0, "--store-port", min=0, max=65535, help="ClickHouse HTTP port of the store (0: a free one)."
    ),
    workers: int = typer.Option(1, "--workers", min=1, max=8, help="Node-stage worker processes."),
    fleet: int = typer.Option(
        24, "--fleet", min=0, max=2000, help="Simulated nodes fed at start (0: an empty fleet)."
    ),
    seed: int = typer.Option(7, "--seed", help="Seed of the simulated fleet."),
    fresh: bool = typer.Option(
        False, "--fresh", help="Start from an empty store and API state (tokens and keys are kept)."
    ),
    foreground: bool = typer.Option(False, "--foreground", help="Run in this terminal until Ctrl-C."),
    timeout: float = typer.Option(180.0, "--timeout", min=10, help="Seconds to wait for the stack."),
) -> None:
    """Start the whole local stack on the embedded defaults: Kafka (Tansu), node stage + guard, sink,
    store (chdb served over the ClickHouse HTTP protocol), actuator stage on a simulated fleet whose
    GPU steps go to a real node agent (its GPUs simulated), the API, and a simulated fleet's
    telemetry. Writes the context file every other command reads.

    Example: breakfix up --fleet 24
    """
    held = load_context()
    if held is not None and _alive(held.pid):
        fail(
            f"a local stack is already up (pid {held.pid}, API {held.api_url})",
            "run `breakfix down` first, or use it as it is",
        )
    ports = (("--broker-port", broker_port), ("--api-port", api_port), ("--store-port", store_port))
    for name, port in ports:
        if not _port_free(port):
            fail(f"port {port} is in use", f"stop what listens there or choose another {name}")
    if fresh:
        for sub in ("chdb", "api", "actuators", "data", "spool"):
            shutil.rmtree(dir / sub, ignore_errors=True)
    if foreground:
        _foreground(dir, broker_port, api_port, store_port, workers, fleet, seed)
        return
    logs = dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    argv = [
        str(Path(sys.executable).parent / "breakfix"), "up", "--foreground", "--dir", str(dir),
        "--broker-port", str(broker_port),
        "--api-port", str(api_port), "--store-port", str(store_port), "--workers", str(workers),
        "--fleet", str(fleet), "--seed", str(seed),
    ]  # fmt: skip
    with (logs / "up.log").open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    with console.status("starting the local stack"):
        while time.monotonic() < deadline:
            ctx = load_context()
            if ctx is not None and ctx.pid == proc.pid:
                break
            if proc.poll() is not None:
                why, hint = _failure(logs / "up.log")
                fail(f"the stack did not start: {why}", hint or f"see the logs in {logs}")
            time.sleep(0.3)
        else:
            _stop(proc.pid, 30)
            fail(f"the stack was not up within {timeout:.0f}s", f"see the logs in {logs}; raise --timeout")
    console.print(f"local stack up: API {ctx.api_url}, broker {ctx.broker}, logs {logs}")
    console.print(f"context: {context_path()} (commands act as operator; BREAKFIX_AS=approver for another)")
    console.print("next: breakfix nodes    stop: breakfix down")


def _foreground(
    dir: Path, broker_port: int, api_port: int, store_port: int, workers: int, fleet: int, seed: int
) -> None:
    from breakfix.stack.run import StackConfig, run_stack

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = StackConfig(dir, broker_port, api_port, store_port, workers, fleet, seed)
    try:
        run_stack(cfg)
    except StoreInUse as err:  # another process holds the stack's store directory
        fail(str(err), err.hint)
    except (RuntimeError, TimeoutError, OSError) as err:
        fail(str(err), f"see the logs in {dir / 'logs'}")
    finally:
        ctx = load_context()
        if ctx is not None and ctx.pid == os.getpid():
            context_path().unlink(missing_ok=True)


def _failure(log: Path) -> tuple[str, str]:
    """Why the owner process stopped, from the end of its log: its own ``error:``/``hint:`` lines
    when it said them (a port or store in use), else the last line (a traceback's)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i in range(len(lines) - 1, max(len(lines) - 3, -1), -1):
        if lines[i].startswith("error: "):
            after = lines[i + 1] if i + 1 < len(lines) else ""
            hint = after.removeprefix("hint: ") if after.startswith("hint: ") else ""
            return lines[i].removeprefix("error: ")[:400], hint
    return (lines[-1][-300:] if lines else "no output"), ""


def _stop(pid: int, grace_s: float) -> bool:
    """SIGTERM the owner (it stops its children), SIGKILL its group after ``grace_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    return False


def down(
    timeout: float = typer.Option(60.0, "--timeout", min=1, help="Seconds to wait before killing."),
) -> None:
    """Stop the local stack `breakfix up` started (every process of it) and remove the context file.

    Example: breakfix down
    """
    ctx = load_context()
    if ctx is None:
        console.print(f"no local stack: no context file at {context_path()}")
        return
    if _alive(ctx.pid):
        with console.status("stopping the local stack"):
            clean = _stop(ctx.pid, timeout)
        if not clean:
            console.print(f"the stack did not stop within {timeout:.0f}s and was killed")
    left = _orphans(Path(ctx.dir))
    for name, pid in left.items():  # the owner died without stopping them
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        console.print(f"stopped {name} (pid {pid}), left behind by the stack's owner")
    context_path().unlink(missing_ok=True)
    console.print("local stack stopped")


def _pids(work: Path) -> dict[str, int]:
    """The stack's processes (name -> pid) as the owner wrote them down when the stack was ready."""
    import json

    try:
        pids: dict[str, int] = json.loads((work / "pids.json").read_text())
    except (OSError, ValueError):
        return {}
    return pids


def _orphans(work: Path) -> dict[str, int]:
    """The stack's processes still running, from the pids file the owner wrote (a pid counts only
    while its command line is still a breakfix or Tansu process: pids are reused)."""
    pids = _pids(work)
    out = {}
    for name, pid in pids.items():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "breakfix" in cmd or "tansu" in cmd or "streams" in cmd:
            out[name] = int(pid)
    return out


def status() -> None:
    """Whether the local stack is up, and where its parts are.

    Example: breakfix status
    """
    ctx = load_context()
    if ctx is None or not _alive(ctx.pid):
        fail("no local stack is running", "start one with `breakfix up`", code=1)
    console.print(f"up (pid {ctx.pid}): API {ctx.api_url}, broker {ctx.broker}, dir {ctx.dir}")
    running = _orphans(Path(ctx.dir))
    for name, pid in running.items():
        console.print(f"  {name} {pid}")
    gone = sorted(set(_pids(Path(ctx.dir))) - set(running))
    if gone:
        console.print(f"[red]not running:[/] {', '.join(gone)} (see {Path(ctx.dir) / 'logs'})")
    console.print(f"identities: {', '.join(sorted(ctx.tokens))} (pick one with BREAKFIX_AS=<role>)")


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down)
    app.command("status")(status)
