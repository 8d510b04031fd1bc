"""``breakfix demo`` orchestration: simulate, start everything, feed, settle, summarize, report, stop.

Phases, each with its own progress bar:

1. simulate a fleet with a mix of the shipped fault scenarios (ground-truth labels alongside);
2. start the embedded Tansu broker, create the topics, start one node-stage/guard worker, the actuator
   stage on simulated actuators, and the ClickHouse sink into an embedded chdb store under ``.demo/``;
3. feed the recording as live telemetry, paced so ``hours`` of fleet time take ``feed_s`` seconds;
4. settle: wait until the topics stop growing (decisions answered, results sunk);
5. stop the processes (the sink first: chdb allows one process per data path), load the labels and
   compute the summary with SQL, then write the HTML report.

The demo policy is the shipped one with the decisive low-risk classes (``gpu_hardware``,
``gpu_memory``) switched to ``auto``, as an operator graduating them would; every other class stays
in recommend mode, so the summary shows both. Every child process is stopped when the run ends, also
on an error or Ctrl-C (:class:`~breakfix.demo.processes.Children`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from breakfix.demo.feed import feed
from breakfix.demo.processes import Children, wait_for_line
from breakfix.demo.summary import Summary, load_labels, summarize
from policy.model import DEFAULT_POLICY, load_policy
from schemas.topics import TOPICS, Topic
from sim.simulator.alloc import AllocationError
from sim.simulator.clock import DEFAULT_START, parse_start
from sim.simulator.engine import SimConfig, simulate, ticks_of
from sim.simulator.scenario import ScenarioError, load_scenario, resolve, shipped
from store.base import Store
from streams.kafka.client import kafka_options
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.kafka.topics import create_topics
from streams.keys import single_host_keys
from streams.pipeline.workers import settings_env, start_worker
from streams.settings import StreamSettings

AUTO_CLASSES = ("gpu_hardware", "gpu_memory")
# The proposals topic also carries the node stage's watermark marks, which the sink would dead-letter
# as malformed proposals; the demo stores everything else.
SUNK = tuple(t.name for t in TOPICS if t.name != Topic.PROPOSALS)
# The last fallback when the fleet is too small for (nearly) every shipped scenario.
SMALL_MIX = ("xid79-fallen-off-bus", "dbe-row-remap-failure", "sbe-rising", "thermal-fan-failure", "noise")
LAG_S = 30.0
"""How far the actuators' fleet clock runs behind the feed (fleet seconds), so a result is never
stamped ahead of the events fed before it (see breakfix.demo.actuation.FleetClock)."""


@dataclass(frozen=True)
class DemoConfig:
    nodes: int = 200
    hours: float = 2.0
    seed: int = 7
    feed_s: float = 75.0
    workdir: Path = Path(".demo")
    report: Path | None = None


def run_demo(cfg: DemoConfig, console: Console) -> Summary:
    began = time.monotonic()
    timings: dict[str, float] = {}
    work = cfg.workdir.resolve()
    for sub in ("chdb", "actuators", "data", "spool", "logs"):
        shutil.rmtree(work / sub, ignore_errors=True)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    columns = (TextColumn("{task.description:<34}"), BarColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=False) as bar:
        rec, labels, end = _simulate(cfg, work, bar)
        timings["simulate"] = time.monotonic() - began
        with Children() as kids:
            t0 = time.monotonic()
            settings = _start(cfg, work, kids, bar)
            timings["start"] = time.monotonic() - t0
            t0 = time.monotonic()
            _feed(cfg, rec, settings, kids, work, bar)
            timings["feed"] = time.monotonic() - t0
            t0 = time.monotonic()
            _settle(settings, kids, bar)
            timings["settle"] = time.monotonic() - t0
            task = bar.add_task("stopping the pipeline", total=1, info="")
            kids.stop("sink")
            kids.stop("actuators")
            kids.stop("worker")
            bar.update(task, completed=1)
        t0 = time.monotonic()
        summary = _summarize(work, labels, end, cfg, bar)
        timings["summary+report"] = time.monotonic() - t0
    timings["total"] = time.monotonic() - began
    summary.timings_s = {k: round(v, 1) for k, v in timings.items()}
    return summary


def _simulate(cfg: DemoConfig, work: Path, bar: Progress) -> tuple[Path, Path, datetime]:
    rec, labels = work / "fleet.jsonl", work / "labels.jsonl"
    start = parse_start(DEFAULT_START)
    # Every shipped scenario; without the one that needs a whole leaf switch; a small mix.
    mixes = (["all"], [p.stem for p in shipped() if p.stem != "leaf-switch-nccl"], list(SMALL_MIX))
    for names in mixes:
        scenarios = [load_scenario(p) for p in resolve(names)]
        sim = SimConfig(nodes=cfg.nodes, hours=cfg.hours, seed=cfg.seed, start=start, scenarios=scenarios)
        task = bar.add_task(f"simulating {cfg.nodes} nodes x {cfg.hours:g} h", total=ticks_of(sim), info="")
        try:
            result = simulate(sim, rec, labels, lambda n, t=task: bar.advance(t, n))  # type: ignore[misc]
        except (AllocationError, ScenarioError):
            bar.remove_task(task)
            continue
        faulty = [label for label in result.labels if label.truth == "fault"]
        # the summary counts the same way: scenarios that injected a fault (noise ones inject none)
        with_faults = len({label.scenario for label in faulty})
        info = f"{result.events:,} events, {len(faulty)} faults from {with_faults} fault scenarios"
        bar.update(task, info=info)
        return rec, labels, datetime.fromtimestamp(start + cfg.hours * 3600, UTC)
    raise RuntimeError(
        f"{cfg.nodes} nodes are too few for the demo's fault scenarios: use --nodes 40 or more"
    )


def _demo_policy(work: Path) -> Path:
    doc = yaml.safe_load(DEFAULT_POLICY.read_text())
    doc["version"] = f"{doc['version']}+demo"
    doc.setdefault("modes", {})["classes"] = {c: "auto" for c in AUTO_CLASSES}
    path = work / "policy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _start(cfg: DemoConfig, work: Path, kids: Children, bar: Progress) -> StreamSettings:
    task = bar.add_task("starting broker, node stage and sink", total=3, info="Tansu")
    broker = EmbeddedBroker(log_dir=work / "logs").start()
    kids.on_exit("broker", broker.stop)
    settings = StreamSettings(
        broker=broker.url,
        app_id="breakfix-demo",
        data_dir=work / "data",
        keys_dir=single_host_keys(work / "keys"),  # one host: one key per role
        policy_file=_demo_policy(work),
        web_port=0,
        session_timeout_s=6.0,
        heartbeat_s=0.5,
    )
    asyncio.run(create_topics(settings))
    bar.update(task, advance=1, info="node stage + guard")
    kids.adopt("worker", start_worker(settings, 0, work / "logs" / "worker-0.log"))
    bar.update(task, advance=1, info="sink -> chdb")
    env = {**os.environ, **settings_env(settings)}
    python = sys.executable
    kids.spawn(
        "sink",
        [python, "-m", "streams.sink.stage", "--bootstrap", settings.broker,
         "--store", f"chdb:///{work / 'chdb'}",
         "--spool", str(work / "spool"), "--topics", ",".join(SUNK)],
        env,
        work / "logs" / "sink.log",
    )  # fmt: skip
    bar.update(task, advance=1, info="")
    return settings


def _feed(
    cfg: DemoConfig, rec: Path, settings: StreamSettings, kids: Children, work: Path, bar: Progress
) -> None:
    lines = sum(1 for _ in rec.open("rb"))
    origin = parse_start(DEFAULT_START)
    speed = cfg.hours * 3600 / cfg.feed_s
    wall_origin = time.time() + 8.0  # the actuator stage joins its group meanwhile
    log = work / "logs" / "actuators.log"
    proc = kids.spawn(
        "actuators",
        [str(Path(sys.executable).parent / "breakfix"), "run", "--role", "actuators", "--simulate",
         "--broker", settings.broker, "--labels", str(work / "labels.jsonl"),
         "--state-dir", str(work / "actuators"), "--speed", str(speed), "--origin", str(origin),
         "--wall-origin", str(wall_origin), "--lag", str(LAG_S), "--seed", str(cfg.seed),
         "--until", str(origin + cfg.hours * 3600)],
        {**os.environ, **settings_env(settings)},
        log,
    )  # fmt: skip
    waiting = bar.add_task("starting the actuator stage", total=1, info="simulated actuators")
    wait_for_line(log, "actuator stage ready", 60, lambda: proc.poll() is None)
    bar.update(waiting, completed=1)
    task = bar.add_task(f"fleet telemetry at {speed:.0f}x", total=lines, info="")

    def progress(n: int) -> None:
        bar.advance(task, n)
        dead = kids.dead()
        if dead:
            raise RuntimeError(f"{', '.join(dead)} stopped during the feed; see {work / 'logs'}")

    stats = asyncio.run(feed(rec, settings, float(origin), wall_origin, speed, progress))
    bar.update(task, info=f"{stats.messages:,} messages, max {stats.behind_s:.1f}s behind pace")


def _settle(settings: StreamSettings, kids: Children, bar: Progress, quiet_s: float = 6.0) -> None:
    """Wait until no topic has grown for ``quiet_s`` (at most 45 s): the loop has come to rest."""
    task = bar.add_task("settling: last decisions and results", total=None, info="")

    async def watch() -> None:
        consumer = AIOKafkaConsumer(**kafka_options(settings=settings), enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(settings.topic(t.name), p) for t in TOPICS for p in range(t.partitions)]
            last, since, deadline = -1, time.monotonic(), time.monotonic() + 45
            while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
                total = sum((await consumer.end_offsets(tps)).values())
                if total != last:
                    last, since = total, time.monotonic()
                    bar.update(task, info=f"{total:,} messages on the broker")
                await asyncio.sleep(0.5)
        finally:
            await consumer.stop()

    asyncio.run(watch())
    bar.update(task, total=1, completed=1)


def _summarize(work: Path, labels: Path, end: datetime, cfg: DemoConfig, bar: Progress) -> Summary:
    from store.dsn import open_store

    task = bar.add_task("summary and report from ClickHouse SQL", total=3, info="")
    store = open_store(f"chdb:///{work / 'chdb'}")
    try:
        load_labels(store, labels)
        bar.advance(task)
        summary = summarize(store, end)
        bar.advance(task)
        summary.report = _report(
            store, (cfg.report or work / "report.html").resolve(), summary, work / "policy.yaml"
        )
        bar.advance(task)
    finally:
        store.close()
    return summary


def _report(store: Store, out: Path, summary: Summary, policy: Path) -> str | None:
    try:
        from breakfix.report import build_report
    except ImportError as err:
        summary.note = f"HTML report not written: breakfix.report is unavailable ({err})"
        return None
    return str(build_report(store, out, policy=load_policy(policy)))
