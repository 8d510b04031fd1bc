"""Serve a stage process's Prometheus metrics, then run the stage in this same process.

The node-stage worker and the actuator stage serve their metrics themselves (BREAKFIX_METRICS_PORT,
streams/settings.py). The sink (``streams.sink``) records its counters and consumer lag in
prometheus-client's default registry (streams/metrics.py) but has no port option yet, so in the
container image this launcher serves that registry on a port first and then hands over to the sink,
so Prometheus sees the very counters it updates. Usage::

    python /opt/breakfix/with_metrics.py 9401 streams.sink --bootstrap kafka:9092 ...

``breakfix`` runs the console script's entry point; anything else is run like ``python -m``.
"""

from __future__ import annotations

import runpy
import sys


def main(argv: list[str]) -> None:
    if len(argv) < 2 or not argv[0].isdigit():
        sys.exit("usage: with_metrics.py PORT (breakfix ARGS... | MODULE ARGS...)")
    port, target, args = int(argv[0]), argv[1], argv[2:]
    from streams.metrics import serve

    serve(port)
    sys.argv = [target, *args]
    if target == "breakfix":
        from breakfix.cli.main import main as breakfix_main

        breakfix_main()
    else:
        runpy.run_module(target, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
