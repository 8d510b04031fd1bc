"""``breakfix up``'s owner process: the whole local stack on the embedded defaults, until SIGTERM.

Every long-running part is started as ``breakfix run --role ROLE``, as production runs it. What it
starts, in order, each stopped in reverse when it ends (:class:`~breakfix.demo.processes.Children`):

1. the embedded store: this process opens the chdb data path and serves it over the ClickHouse HTTP
   protocol (:mod:`store.chdb_http`) with two users, ``breakfix`` (writes: the sink, the
   API's audit) and ``reader`` (a read-only profile with time, memory and result limits: what the
   context file hands to ``breakfix sql``) — chdb admits one process per data path, so every other
   process reaches the store through that protocol, as it would reach a ClickHouse server;
2. the embedded Tansu broker on the chosen port (default 9092, the port every command defaults to),
   and the topics with their partition counts;
3. the node stage + guard worker(s), the ClickHouse sink, and the actuator stage on a simulated
   fleet whose GPU operations (reset, reboot, diagnostics) go over Kafka to a real ``breakfix
   node-agent --simulate`` process playing every node of the fleet: commands signed by the stage,
   verified, journaled and answered signed by the agent, as in production; only the GPUs are
   simulated (each process signs with its role's key: one key per role is created under the
   stack's directory, as on one host);
4. the operator API (``breakfix run --role api``; its plans' steps go to the guard, and the actuator
   stage above runs them), with a tokens file of one
   local identity per role; its ad-hoc SQL (``POST /sql``) runs as the store's read-only ``reader``;
5. optionally a simulated fleet's last hour of telemetry, fed live, so ``breakfix nodes`` has a fleet.

Then it writes the context file (:mod:`breakfix.stack.context`) and waits. Simulated steps run
:data:`STEP_SPEED` times faster than the durations they stand for (a reboot takes seconds), while
the fleet's clock stays the wall clock its live telemetry is stamped with.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from breakfix.demo.processes import Children, wait_for_line
from breakfix.stack.context import StackContext
from schemas.topics import TOPICS, Topic
from store.chdb_http import ChdbHttpServer, ServerConfig, User
from streams.kafka.embedded_broker import EmbeddedBroker, free_port
from streams.kafka.topics import create_topics
from streams.keys import create_all
from streams.pipeline.workers import settings_env, start_worker
from streams.settings import StreamSettings

log = logging.getLogger(__name__)
ROLES = ("operator", "approver", "viewer", "agent", "admin")
SUNK = tuple(t.name for t in TOPICS if t.name != Topic.PROPOSALS)
"""The proposals topic also carries the node stage's watermark marks (not rows): not sunk."""
STEP_SPEED = 100.0
"""Simulated steps run this much faster than the durations they stand for."""


@dataclass(frozen=True)
class StackConfig:
    dir: Path
    broker_port: int = 9092
    api_port: int = 8080
    store_port: int = 0
    workers: int = 1
    fleet: int = 24
    """Simulated nodes whose last hour of telemetry is fed at start (0: an empty fleet)."""
    seed: int = 7


def _tokens(work: Path) -> dict[str, str]:
    """One local identity per role, kept across restarts of the stack (same tokens, same actors)."""
    path = work / "tokens.yaml"
    if path.exists():
        doc = yaml.safe_load(path.read_text()) or {}
        return {v["role"]: k for k, v in doc.items()}
    tokens = {role: f"bf_{role}_{secrets.token_urlsafe(18)}" for role in ROLES}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump({t: {"actor": f"local-{r}", "role": r} for r, t in tokens.items()}, fh)
    return tokens


def _store(cfg: StackConfig, work: Path) -> ChdbHttpServer:
    users = {
        "breakfix": User("breakfix", secrets.token_urlsafe(18)),
        "reader": User("reader", secrets.token_urlsafe(18), readonly=True),
    }
    server = ChdbHttpServer(work / "chdb", port=cfg.store_port, config=ServerConfig(users=users)).start()
    from store.dsn import open_store
    from store.migrate import migrate

    store = open_store(server.dsn("breakfix"))
    try:
        migrate(store)
    finally:
        store.close()
    return server


def run_stack(cfg: StackConfig, ready: threading.Event | None = None) -> None:
    """Start everything, write the context file, wait for SIGTERM/SIGINT, stop everything."""
    work = cfg.dir.resolve()
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    breakfix = str(Path(sys.executable).parent / "breakfix")
    with Children() as kids:
        store = _store(cfg, work)
        kids.on_exit("store", store.stop)
        log.info("store: chdb at %s served on %s", work / "chdb", store.url)
        broker = EmbeddedBroker(port=cfg.broker_port, log_dir=logs).start()
        kids.on_exit("broker", broker.stop)
        settings = StreamSettings(
            broker=broker.url,
            data_dir=work / "data",
            keys_dir=work / "keys",
            web_port=0,
            workers=cfg.workers,
            session_timeout_s=6.0,
            heartbeat_s=0.5,
        )
        asyncio.run(create_topics(settings))
        log.info("broker: Tansu on %s, topics created", broker.url)
        if not (work / "keys" / "trusted.keys").is_file():
            create_all(work / "keys")  # one host: one signing key per role (`breakfix keys create`'s layout)
        env = {**os.environ, **settings_env(settings)}
        for i in range(cfg.workers):
            kids.adopt(f"worker-{i}", start_worker(settings, i, logs / f"worker-{i}.log"))
        writer = store.dsn("breakfix")
        kids.spawn(
            "sink",
            [breakfix, "run", "--role", "sink", "--broker", broker.url, "--store", writer,
             "--spool", str(work / "spool"), "--topics", ",".join(SUNK)],
            env, logs / "sink.log",
        )  # fmt: skip
        agents = _fleet_nodes(cfg.fleet)
        agent = None
        if agents:
            agent = kids.spawn(
                "node-agent",
                [breakfix, "run", "--role", "node-agent", "--simulate",
                 *(a for n in agents for a in ("--node", n)), "--broker", broker.url,
                 "--state-dir", str(work / "agent"), "--bundle-dir", str(work / "agent" / "bundles")],
                env, logs / "node-agent.log",
            )  # fmt: skip
        act = kids.spawn(
            "actuators",
            [breakfix, "run", "--role", "actuators", "--simulate", "--broker", broker.url,
             "--state-dir", str(work / "actuators"), "--step-speed", str(STEP_SPEED),
             *(("--node-agent",) if agents else ())],
            env, logs / "actuators.log",
        )  # fmt: skip
        tokens = _tokens(work)
        api_port = cfg.api_port or free_port()
        api = kids.spawn(
            "api",
            [breakfix, "run", "--role", "api", "--port", str(api_port), "--store", writer,
             "--broker", broker.url, "--sql-store", store.dsn("reader"),
             "--tokens", str(work / "tokens.yaml"), "--state-dir", str(work / "api")],
            env, logs / "api.log",
        )  # fmt: skip
        api_url = f"http://127.0.0.1:{api_port}"
        _wait_http(api_url + "/healthz", 60, lambda: api.poll() is None, logs / "api.log")
        wait_for_line(logs / "actuators.log", "actuator stage ready", 60, lambda: act.poll() is None)
        if agent is not None:
            wait_for_line(logs / "node-agent.log", "node-agent ", 60, lambda: agent.poll() is None)
        if cfg.fleet:
            from breakfix.stack.fleet import feed_fleet

            fed = feed_fleet(settings, work, cfg.fleet, cfg.seed)
            log.info("fleet: %d simulated nodes, %d events of the last hour fed", cfg.fleet, fed)
            _settle(store.dsn("reader"), cfg.fleet)
        ctx = StackContext(
            broker=broker.url,
            api_url=api_url,
            store=store.dsn("reader"),
            tokens=tokens,
            pid=os.getpid(),
            dir=str(work),
        )
        _write_pids(work, {**{n: p.pid for n, p in kids.procs.items()}, **(
            {"broker": broker.proc.pid} if broker.proc is not None else {})})  # fmt: skip
        path = ctx.save()
        log.info("stack ready; context written to %s", path)
        if ready is not None:
            ready.set()
        while not stop.wait(1.0):
            dead = kids.dead()
            if dead:
                log.error("%s stopped on its own; stopping the stack (logs in %s)", ", ".join(dead), logs)
                break
        log.info("stopping the stack")
        kids.stop("api")
        kids.stop("actuators")
        if agent is not None:
            kids.stop("node-agent")
        kids.stop("sink")
    log.info("stack stopped")


def _fleet_nodes(count: int) -> list[str]:
    """The simulated fleet's node ids (the simulator lays a fleet of ``count`` out the same way
    every time), so one node agent process can play each of them."""
    if count <= 0:
        return []
    from sim.simulator.fleet import build_fleet

    return [n.name for n in build_fleet(count).nodes]


PIDS = "pids.json"
"""The stack's processes (name -> pid), for `breakfix down` when the owner itself died."""


def _write_pids(work: Path, pids: dict[str, int]) -> None:
    (work / PIDS).write_text(json.dumps(pids))


def _settle(dsn: str, nodes: int, quiet_s: float = 3.0, timeout_s: float = 90.0) -> None:
    """Wait until the store has the whole fleet's inventory and its decisions stopped arriving, so
    the first `breakfix nodes` after `up` shows the fleet as the pipeline judged it (bounded: a slow
    machine gets the stack after ``timeout_s`` anyway, the rest arrives shortly after)."""
    from store.dsn import open_store

    store = open_store(dsn)
    db = store.database
    try:
        deadline, last, since = time.monotonic() + timeout_s, (-1, -1), time.monotonic()
        while time.monotonic() < deadline:
            seen = (
                int(store.query(f"SELECT uniqExact(node) FROM {db}.node_inventory").rows[0][0]),
                int(store.query(f"SELECT count() FROM {db}.decisions").rows[0][0]),
            )
            if seen != last:
                last, since = seen, time.monotonic()
            elif seen[0] >= nodes and time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.5)
        log.warning("the fleet had not settled after %.0fs (%d nodes, %d decisions stored)", timeout_s, *last)
    finally:
        store.close()


def _wait_http(url: str, timeout_s: float, alive: object, logfile: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if callable(alive) and not alive():
            raise RuntimeError(f"the API exited before it answered; see {logfile}")
        time.sleep(0.2)
    raise TimeoutError(f"the API did not answer on {url} within {timeout_s:.0f}s; see {logfile}")
