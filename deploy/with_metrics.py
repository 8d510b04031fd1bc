"""Serve a stage process's Prometheus metrics, then run the stage in this same process.

The node-stage worker (``streams.workers``), the sink (``streams.sink``) and the actuator stage
(``breakfix run --role actuators``) record their counters in prometheus-client's default registry
(streams/metrics.py, actuators/metrics.py) but do not serve it themselves yet. In the container
image this launcher serves that registry on a port first and then hands over to the stage, so
Prometheus sees the very counters the stage updates. Usage::

    python /opt/breakfix/with_metrics.py 9401 streams.workers
    python /opt/breakfix/with_metrics.py 9401 streams.sink --bootstrap kafka:9092 ...
    python /opt/breakfix/with_metrics.py 9401 breakfix run --role actuators --simulate

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
