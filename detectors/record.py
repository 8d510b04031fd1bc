"""A node's detection state as a tuple of builtins, for the node stage's checkpoint record.

Pickling ``DetectState`` as objects wrote every slot's and model's class path and every float boxed,
and the river model whole (~8 KB); this form writes values only: slots as tuples (their table key is
derived from their fields again), temperature baselines as one array of doubles, the window model as
its packed masses (``detectors.hst_pack``). Decoding gives a state equal field for field.
"""

from __future__ import annotations

from array import array
from collections import deque
from typing import Any

from detectors.models import Ewma, NodeWindowModel
from detectors.slots import Slot
from detectors.state import MAX_CHANGES, DetectState
from schemas.common import FailureDomain

DetState = tuple[Any, ...]
_EWMA_FIELDS = 6
"""gpu, alpha, n, mean, var, sd: every value is exact as a double (n counts learned readings)."""


def _slot_state(s: Slot) -> tuple[Any, ...]:
    return (s.domain.value, s.gpu, s.signal, s.weight, s.half_life_s, s.decisive, s.action, s.attribution,
            s.source, s.first_time, s.last_time, s.count, tuple(s.event_ids), s.detail, s.model)  # fmt: skip


def _slot(t: tuple[Any, ...]) -> Slot:
    (
        domain,
        gpu,
        signal,
        weight,
        half_life,
        decisive,
        action,
        attribution,
        source,
        first,
        last,
        count,
        ids,
        detail,
        model,
    ) = t
    return Slot(FailureDomain(domain), gpu, signal, weight, half_life, decisive, action, attribution,
                source, first, last, count, list(ids), detail, model)  # fmt: skip


def _ewmas(models: dict[int, Ewma]) -> bytes:
    return array(
        "d", [v for g, m in models.items() for v in (g, m.alpha, m.n, m.mean, m.var, m.sd)]
    ).tobytes()


def _from_ewmas(b: bytes) -> dict[int, Ewma]:
    a = array("d")
    a.frombytes(b)
    out = {}
    for i in range(0, len(a), _EWMA_FIELDS):
        g, alpha, n, mean, var, sd = a[i : i + _EWMA_FIELDS]
        out[int(g)] = Ewma(alpha, int(n), mean, var, sd)
    return out


def _window(w: NodeWindowModel) -> tuple[Any, ...]:
    return w.windows, w.acc_n, w.acc_temp, w.acc_temp_max, w.acc_power, w.acc_util, w.pack()


def _from_window(t: tuple[Any, ...]) -> NodeWindowModel:
    windows, acc_n, temp, temp_max, power, util, packed = t
    return NodeWindowModel(None, packed, windows, acc_n, temp, temp_max, power, util)


def det_state(st: DetectState) -> DetState:
    """Everything but the node id (the record keeps it once)."""
    return (
        st.pool, st.rack, st.sku, st.gpus, st.labels, st.bus_to_gpu,
        tuple(_slot_state(s) for s in st.slots.values()),
        st.counters, _ewmas(st.temp_models), st.scrapes, _window(st.window_model), st.heartbeats,
        tuple(st.changes), {job: tuple(g) for job, g in st.app_xid_gpus.items()}, st.last_hw_xid,
        st.unparsed_kernel_lines, st.lemon, st.lemon_time, st.gpu_lemon, st.last_time, st.dirty,
    )  # fmt: skip


def from_det_state(node: str, s: DetState) -> DetectState:
    (pool, rack, sku, gpus, labels, bus_to_gpu, slots, counters, ewmas, scrapes, window, heartbeats,
     changes, app_xid, last_hw_xid, unparsed, lemon, lemon_time, gpu_lemon, last_time, dirty) = s  # fmt: skip
    restored = [_slot(t) for t in slots]
    return DetectState(
        node, pool, rack, sku, gpus, labels, bus_to_gpu,
        slots={(x.domain.value, x.gpu, x.signal): x for x in restored},
        counters=counters, temp_models=_from_ewmas(ewmas), scrapes=scrapes,
        window_model=_from_window(window), heartbeats=heartbeats,
        changes=deque(changes, maxlen=MAX_CHANGES),
        app_xid_gpus={job: set(g) for job, g in app_xid.items()},
        last_hw_xid=last_hw_xid, unparsed_kernel_lines=unparsed, lemon=lemon, lemon_time=lemon_time,
        gpu_lemon=gpu_lemon, last_time=last_time, dirty=dirty,
    )  # fmt: skip
