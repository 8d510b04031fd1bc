"""``breakfix replay``: what a policy would have done, offline (or republished into Kafka)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

from breakfix.cli.common import console, fail, print_json
from policy.model import Policy, PolicyError, load_policy
from schemas.decision import Decision
from schemas.recording import RecordingWriter
from sim.replay import OfflineReplay


def _policy(path: Path | None) -> Policy:
    try:
        return load_policy(path)
    except PolicyError as err:
        fail(str(err), "run `breakfix policy check FILE` for details")


def _actuators(kind: str, labels: Path | None, seed: int, follow: bool = False) -> object | None:
    if kind == "none":
        return None
    from sim.simulator.actuators import SimulatedActuators  # type: ignore[import-not-found,unused-ignore]

    if labels:
        return SimulatedActuators.from_labels(labels, seed=seed, follow_recommendations=follow)
    return SimulatedActuators(seed=seed, follow_recommendations=follow)


def run_offline(
    rec: str,
    policy: Policy,
    out: Path | None,
    evidence: Path | None,
    actuators: object | None,
    show_progress: bool,
) -> tuple[list[Decision], dict[str, object]]:
    """Replay one recording; write decisions (and evidence); return decisions and the summary."""
    replay = OfflineReplay(policy, actuators)  # type: ignore[arg-type]
    decisions: list[Decision] = []
    dw = RecordingWriter(out) if out else None
    ew = RecordingWriter(evidence) if evidence else None
    size = Path(rec).stat().st_size if rec != "-" and not rec.endswith(".gz") else None
    with Progress(
        TextColumn("replay"),
        BarColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.completed:.0f} B"),
        disable=not show_progress,
        transient=True,
    ) as prog:
        task = prog.add_task("replay", total=size)
        for o in replay.run(rec, on_line=lambda n: prog.advance(task, n)):
            if o.decision is not None:
                decisions.append(o.decision)
                if dw:
                    dw.write(o.decision)
            elif o.evidence is not None and ew:
                ew.write(o.evidence)
    for w in (dw, ew):
        if w:
            w.close()
    return decisions, replay.summary.as_dict()


def replay(
    recording: str = typer.Argument(..., help="Recording (.jsonl/.jsonl.gz); '-' reads stdin."),
    offline: bool = typer.Option(
        False, "--offline", help="Run the pipeline in-process with a virtual clock."
    ),
    into_kafka: bool = typer.Option(False, "--into-kafka", help="Republish into Kafka, marked as replay."),
    policy: Path | None = typer.Option(None, "--policy", help="Policy file (default: the shipped policy)."),
    compare_policy: Path | None = typer.Option(
        None, "--compare-policy", help="Diff decisions against this policy."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write decisions as JSON lines."),
    evidence: Path | None = typer.Option(None, "--evidence", help="Write evidence items as JSON lines."),
    actuators: str = typer.Option(
        "sim", "--actuators", help="'sim' closes the loop with simulated actuators; 'none'."
    ),
    labels: Path | None = typer.Option(None, "--labels", help="Ground truth for the simulated actuators."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulated actuators."),
    follow: bool = typer.Option(
        False,
        "--follow-recommendations",
        help="Simulated operator carries out recommend-mode actions 30 min later (what score assumes).",
    ),
    broker: str | None = typer.Option(None, "--broker", help="Kafka bootstrap (with --into-kafka)."),
    speed: float | None = typer.Option(None, "--speed", help="Replay speed factor (with --into-kafka)."),
    fast: bool = typer.Option(False, "--as-fast-as-possible", help="No pacing (with --into-kafka)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Replay a recording through the very functions the streaming path runs.

    Example: breakfix replay --offline fleet.jsonl.gz --out decisions.jsonl
    """
    if offline == into_kafka:
        fail("choose exactly one of --offline or --into-kafka")
    if recording != "-" and not Path(recording).is_file():
        fail(f"no such recording: {recording}", "make one with `breakfix simulate --out fleet.jsonl.gz`")
    if into_kafka:
        import asyncio

        from streams.kafka.replay import replay_into_kafka
        from streams.keys import KeysMissing
        from streams.settings import StreamSettings

        settings = StreamSettings(broker=broker) if broker else StreamSettings()
        try:
            asyncio.run(replay_into_kafka(recording, settings, speed=speed, as_fast_as_possible=fast))
        except KeysMissing as err:
            fail(
                str(err),
                "the live pipeline refuses replay-marked lifecycle events the replay key did not seal",
            )
        return
    pol = _policy(policy)
    tty = sys.stderr.isatty()
    loop = _actuators(actuators, labels, seed, follow)
    decisions, summary = run_offline(recording, pol, out, evidence, loop, tty)
    if compare_policy is not None:
        if recording == "-":
            fail("--compare-policy needs a file, not stdin (the recording is read twice)")
        other, _ = run_offline(
            recording, _policy(compare_policy), None, None, _actuators(actuators, labels, seed, follow), tty
        )
        _print_diff(decisions, other, pol.version, _policy(compare_policy).version)
    if as_json:
        print_json(summary)
    else:
        console.print(json.dumps(summary, indent=1, sort_keys=True))


def _key(d: Decision) -> tuple[str, str, str]:
    return (d.node, d.trigger, "held" if d.held else d.to_state.value)


def _print_diff(a: list[Decision], b: list[Decision], va: str, vb: str) -> None:
    """Per node: the transitions one policy makes and the other does not (multiset difference)."""
    ca, cb = Counter(map(_key, a)), Counter(map(_key, b))
    only_a, only_b = ca - cb, cb - ca
    nodes = sorted({k[0] for k in only_a} | {k[0] for k in only_b})
    console.print(f"policy diff: {len(nodes)} node(s) treated differently ({va} vs {vb})")
    for n in nodes:
        for k, c in sorted(only_a.items()):
            if k[0] == n:
                console.print(f"  {n}: only {va}: {k[1]} -> {k[2]} x{c}")
        for k, c in sorted(only_b.items()):
            if k[0] == n:
                console.print(f"  {n}: only {vb}: {k[1]} -> {k[2]} x{c}")


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
