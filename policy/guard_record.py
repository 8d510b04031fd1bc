"""The bytes of the guard's state: what ``GuardStage.snapshot`` writes to its changelogged table, up to
twice per decision, for a fleet of 10,000 nodes and more.

Format 3 is ``MAGIC`` followed by plain values (tuples, lists, dicts, strings, numbers) in the
data-only encoding of ``policy.record_codec``: no class paths, no object graph, nothing a reader could
be made to run. Nodes are three columns: names, and for each node the index of its
(placement, state) row in a table of the distinct rows, so a rack of 16 alike nodes costs one row and
16 small integers instead of 16 pickled pydantic models. Proposals in the backlog and the waiting queue
(and operator plan steps held for capacity) are their JSON form, the form the guard reads them in
from the proposals topic. Records of the
former formats (format 2, whose levers were bare scope strings; format 1, a pickle of values; before it
a plain pickle of the ``GuardState``) are refused, never unpickled: the guard then rebuilds its state
from its retained input.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from policy import record_codec
from policy.guard import GuardState, NodeInfo
from policy.levers import Approval, Levers
from schemas.common import NodeState
from schemas.decision import Mode
from schemas.proposal import OperatorProposal, Placement, Proposal

MAGIC = b"GR\x03"

Row = tuple[str, str, str, int, tuple[tuple[str, str], ...], str]
"""pool, rack, sku, gpus, labels as pairs, state value: one distinct (placement, state) of the fleet."""
Nodes = tuple[list[str], list[int], list[Row]]

_rows: dict[str, tuple[Placement, NodeState, Row]] = {}
"""Node → the placement and state objects its row was made from, and the row: a node's row is a pure
function of its frozen ``Placement`` and its ``NodeState``, so it is reused while the node holds those
very objects (held here, so their identity cannot be reused) and remade the moment either is replaced,
as a registration or a decision does. Building 10,000 rows is most of a snapshot's cost; between two
snapshots a handful of nodes change."""


def _row(name: str, info: NodeInfo) -> Row:
    hit = _rows.get(name)
    if hit is not None and hit[0] is info.placement and hit[1] is info.state:
        return hit[2]
    p = info.placement
    row = (p.pool, p.rack, p.sku, p.gpus, tuple(p.labels.items()), info.state.value)
    _rows[name] = (p, info.state, row)
    return row


def encode_nodes(nodes: dict[str, NodeInfo]) -> Nodes:
    """Names in the dict's order, each node's row index, and the distinct rows."""
    if len(_rows) > 2 * len(nodes) + 1024:
        _rows.clear()  # nodes long gone (or another guard's): start over rather than grow
    rows: dict[Row, int] = {}
    index = [rows.setdefault(_row(name, info), len(rows)) for name, info in nodes.items()]
    return list(nodes), index, list(rows)


def decode_nodes(t: Nodes) -> dict[str, NodeInfo]:
    """One ``Placement`` per node, as the guard holds them when built from registrations."""
    names, index, rows = t
    if len(names) != len(index):
        raise ValueError(f"guard record: {len(names)} node names but {len(index)} rows")
    out = {}
    for name, k in zip(names, index, strict=True):
        pool, rack, sku, gpus, labels, state = rows[k]
        placement = Placement(pool=pool, rack=rack, sku=sku, gpus=gpus, labels=dict(labels))
        out[name] = NodeInfo(placement, NodeState(state))
    return out


def _proposals(ps: list[Proposal]) -> list[dict[str, Any]]:
    # ``lost_gpus`` is written only when set, like the guard's ``lost`` below: format 2 unchanged.
    return [p.model_dump(mode="json", exclude=None if p.lost_gpus else {"lost_gpus"}) for p in ps]


def _levers(lv: Levers) -> tuple[Any, ...]:
    """The levers without their order stamps: the guard reads the control topic in log order."""
    approvals = [
        (a.id, a.scope, a.actor, a.role, a.failure_class and str(a.failure_class),
         a.action and str(a.action), a.expires_at, a.used)
        for people in lv.approvals.values()
        for a in people.values()
    ]  # fmt: skip
    return (dict(lv.killswitch), {c: m.value for c, m in lv.modes.items()}, approvals, lv.emergency,
            sorted(lv.excluded_pools), sorted(lv.excluded_nodes))  # fmt: skip


def _from_levers(t: tuple[Any, ...]) -> Levers:
    killswitch, modes, approvals, emergency, pools, nodes = t
    lv = Levers(
        killswitch={str(k): bool(v) for k, v in killswitch.items()},
        modes={str(c): Mode(m) for c, m in modes.items()},
        emergency=bool(emergency),
        excluded_pools=set(pools),
        excluded_nodes=set(nodes),
    )
    for fields in approvals:
        a = Approval(*fields)
        lv.approvals.setdefault(a.scope, {})[a.actor] = a
    return lv


def encode(g: GuardState) -> bytes:
    state: tuple[Any, ...] = (
        encode_nodes(g.nodes),
        g.clock,
        _levers(g.levers),
        g.breaker_open,
        list(g.quarantines),
        list(g.executions),
        _proposals(g.backlog),
        _proposals(g.waiting),
        dict(g.wait_started),
        dict(g.incidents),
        {k: list(q) for k, q in g.blast.items()},
        list(g.seen),
    )
    if g.lost or g.running or g.parked or g.operator_waiting:
        # Appended only when some node has lost capacity (or has a run in flight, or is parked): a
        # guard without any writes the exact bytes format 2 always wrote, and a reader takes any of
        # the lengths.
        state = (*state, dict(g.lost))
    if g.running or g.parked or g.operator_waiting:
        state = (*state, dict(g.running))
    if g.parked or g.operator_waiting:
        state = (*state, sorted(g.parked))
    if g.operator_waiting:  # operator plan steps held for capacity, in their JSON form
        state = (*state, [op.model_dump(mode="json") for op in g.operator_waiting])
    return record_codec.encode(MAGIC, state)


def decode(b: bytes) -> GuardState:
    """The guard's state, or ``record_codec.RecordRefused`` for any other kind, format or damage."""
    value = record_codec.decode(MAGIC, "guard", b)
    try:
        return _state(value)
    except (TypeError, ValueError, KeyError, IndexError) as e:  # pydantic's ValidationError is a ValueError
        raise record_codec.RecordRefused(f"malformed guard record ({e})") from None


def _state(t: tuple[Any, ...]) -> GuardState:
    (nodes, clock, levers, breaker_open, quarantines, executions, backlog, waiting, wait_started,
     incidents, blast, seen) = t[:12]  # fmt: skip
    lost = t[12] if len(t) > 12 else {}  # records written before lost capacity was kept have none
    running = t[13] if len(t) > 13 else {}
    parked = t[14] if len(t) > 14 else []  # nor parked nodes before those were kept
    operator_waiting = t[15] if len(t) > 15 else []  # nor held operator plan steps
    return GuardState(
        nodes=decode_nodes(nodes),
        clock=float(clock),
        levers=_from_levers(levers),
        breaker_open=bool(breaker_open),
        quarantines=deque(quarantines),
        executions=deque(executions),
        backlog=[Proposal.model_validate(p) for p in backlog],
        waiting=[Proposal.model_validate(p) for p in waiting],
        wait_started={n: (float(a), float(b)) for n, (a, b) in wait_started.items()},
        incidents={k: (str(i), float(u)) for k, (i, u) in incidents.items()},
        blast={k: deque((float(s), str(n)) for s, n in q) for k, q in blast.items()},
        seen=OrderedDict.fromkeys(seen),
        lost={str(n): int(k) for n, k in lost.items()},
        running={str(n): str(d) for n, d in running.items()},
        parked={str(n) for n in parked},
        operator_waiting=[OperatorProposal.model_validate(op) for op in operator_waiting],
    )
