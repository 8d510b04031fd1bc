"""Who owns an embedded store's directory: one process per chdb data path, checked before chdb opens it.

chdb admits one process per data path, but a second opener learns it deep inside the engine, as a
long traceback ("Error initializing EmbeddedServer", "Cannot lock file"), and a store served over
HTTP (:mod:`store.chdb_http`) holds no chdb handle between requests, so nothing at all
stopped a second process from opening the files under a running server. So every opener in the
product takes this guard first: an exclusive ``flock`` on ``<path>/breakfix-owner.json``, held
while the process has the store open, with the holder's pid, command line, start time and, when it
serves the store, the ClickHouse HTTP URL others should use instead. A second process is refused
with :class:`StoreInUse`, one line naming the owner and what to do. The kernel drops the lock when
the owner exits, however it exits, so a crash never leaves a stale owner behind.

Within one process the guard is counted: several stores (and the HTTP server) on one path share it,
and it is released when the last of them closes, so a test may open a path, close it and hand it to
a child process.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from store.base import StoreError

OWNER_FILE = "breakfix-owner.json"


class StoreInUse(StoreError):
    """Another process owns the embedded store's directory; ``hint`` says what to do instead."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass
class _Held:
    fd: int
    count: int
    served: str


_HELD: dict[str, _Held] = {}
_LOCK = threading.Lock()


def claim(path: str | Path, served: str = "") -> Callable[[], None]:
    """Own the store at ``path`` (a chdb data directory) for this process, or raise
    :class:`StoreInUse` naming the process that does. ``served``: the URL this process serves the
    store on, told to whoever is refused. Returns the release (call it once, on close)."""
    key = os.path.realpath(path)
    with _LOCK:
        held = _HELD.get(key)
        if held is None:
            Path(key).mkdir(parents=True, exist_ok=True)
            fd = os.open(os.path.join(key, OWNER_FILE), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _refused(key) from None
            held = _HELD[key] = _Held(fd, 0, "")
            _write(held, served)
        elif served and served != held.served:
            _write(held, served)
        held.count += 1
    released = threading.Event()

    def release() -> None:
        if released.is_set():
            return
        released.set()
        with _LOCK:
            held.count -= 1
            if held.count == 0 and _HELD.get(key) is held:
                del _HELD[key]
                os.close(held.fd)  # closing the descriptor drops the flock

    return release


def _write(held: _Held, served: str) -> None:
    held.served = served
    doc = {
        "pid": os.getpid(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:100] if sys.argv else "",
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "served": served,
    }
    os.ftruncate(held.fd, 0)
    os.pwrite(held.fd, json.dumps(doc).encode(), 0)


def owner(path: str | Path) -> dict[str, object]:
    """What the owner wrote about itself (empty while it is still writing, or when nobody did)."""
    try:
        doc = json.loads((Path(path) / OWNER_FILE).read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _refused(path: str) -> StoreInUse:
    who = owner(path)
    pid, command = who.get("pid"), str(who.get("command") or "")
    named = f"pid {pid}" + (f" ({command})" if command else "") if pid else "another process"
    since = f" since {who['since']}" if who.get("since") else ""
    message = f"the embedded store {path} is in use by {named}{since}; chdb admits one process per directory"
    served = str(who.get("served") or "")
    stop = f"stopping pid {pid}" if pid else "stopping it"
    if command.split()[1:2] == ["up"]:
        stop = "`breakfix down`"
    if served:
        hint = (
            f"reach it through its ClickHouse HTTP endpoint {served} (`breakfix sql` and `breakfix report` "
            f"read its DSN from `breakfix up`'s context file when --store is not given), or free it by {stop}"
        )
    else:
        hint = f"free it by {stop}, or point --store at another chdb:///path or a ClickHouse server"
    return StoreInUse(message, hint)
