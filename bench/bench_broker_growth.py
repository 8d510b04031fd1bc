"""How the embedded Tansu broker's cost grows with what it holds, per producer batching.

One producer sends ``--rate`` 300-byte records/s to a 12-partition topic and one consumer reads them;
every ``--every`` seconds the run prints the broker's CPU (cores, from /proc) and the end-to-end
latency. Each ``--linger`` value gets a fresh broker, so the runs compare batching on equal terms: the
produce request is what costs more as the memory engine fills, so fewer, larger requests keep the
broker cheap.

Run: ``.venv/bin/python bench/bench_broker_growth.py --rate 3500 --seconds 50 --linger 5 50``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

try:
    from bench import results
except ModuleNotFoundError:  # run as a script (python bench/x.py): bench/ itself is on sys.path
    import results  # type: ignore[no-redef]

from streams.kafka.embedded_broker import EmbeddedBroker

_TICK = os.sysconf("SC_CLK_TCK")
_PAD = b"x" * 280


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return round(1000 * s[min(len(s) - 1, int(q * len(s)))], 1) if s else float("nan")


async def _run(
    url: str, pid: int, rate: float, seconds: float, every: float, linger: int
) -> list[dict[str, float]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=url)
    await admin.start()
    await admin.create_topics([NewTopic("growth", 12, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=url, linger_ms=linger)
    consumer = AIOKafkaConsumer(
        "growth", bootstrap_servers=url, fetch_max_wait_ms=50, auto_offset_reset="earliest"
    )
    await producer.start()
    await consumer.start()
    lat: list[float] = []

    async def read() -> None:
        while True:
            for msgs in (await consumer.getmany(timeout_ms=100)).values():
                now = time.time()
                lat.extend(now - float(m.value[:20]) for m in msgs if m.value)

    reader = asyncio.create_task(read())
    rows: list[dict[str, float]] = []
    start = last = time.perf_counter()
    cpu0, sent = _cpu_s(pid), 0
    try:
        while (elapsed := time.perf_counter() - start) < seconds:
            while sent < int(elapsed * rate):
                await producer.send(
                    "growth", f"{time.time():20.6f}".encode() + _PAD, key=str(sent % 10_000).encode()
                )
                sent += 1
            if (now := time.perf_counter()) - last >= every:
                cpu1 = _cpu_s(pid)
                cores = round((cpu1 - cpu0) / (now - last), 2)
                rows.append(
                    {"t_s": round(elapsed), "records_held": sent, "broker_cores": cores,
                     "p50_ms": _pct(lat, 0.5), "p99_ms": _pct(lat, 0.99)}
                )  # fmt: skip
                lat.clear()
                cpu0, last = cpu1, now
            await asyncio.sleep(0.005)
    finally:
        reader.cancel()
        await producer.stop()
        await consumer.stop()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=3500.0)
    ap.add_argument("--seconds", type=float, default=50.0)
    ap.add_argument("--every", type=float, default=10.0)
    ap.add_argument(
        "--linger", type=int, nargs="+", default=[5, 50], help="producer linger_ms values to compare"
    )
    args = ap.parse_args()
    runs = []
    for linger in args.linger:
        with EmbeddedBroker(log_dir=Path(tempfile.mkdtemp(prefix="breakfix-growth-"))) as broker:
            assert broker.proc is not None, "the embedded broker runs as a child process"
            rows = asyncio.run(_run(broker.url, broker.proc.pid, args.rate, args.seconds, args.every, linger))
        runs.append({"linger_ms": linger, "rate": args.rate, "intervals": rows})
        print(json.dumps(runs[-1]))
    results.write("broker_growth", {"runs": runs})


if __name__ == "__main__":
    main()
