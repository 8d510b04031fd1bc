"""The report as a person sees it: rendered by headless Chromium from a replayed simulator run.

Checks that the page's scripts ran offline and every plot panel drew SVG with data in it (from the
DOM after scripts ran), and that the screenshot is a picture, not a blank page.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
from fixtures.replayed_run import replayed_store_fixture  # noqa: F401 - the replayed_store fixture

from breakfix.report import build_report
from store.base import Store

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"


def _chromium_installed() -> bool:
    dpkg = shutil.which("dpkg")
    ok = dpkg is not None and subprocess.run([dpkg, "-s", "chromium"], capture_output=True).returncode == 0
    return ok and Path(CHROMIUM).exists()


requires_chromium = pytest.mark.skipif(
    not _chromium_installed(),
    reason="Debian chromium is not installed: run `make sysdeps` (apt-get install chromium)",
)


def _chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={cwd / 'profile'}", "--virtual-time-budget=20000"]  # fmt: skip
    return subprocess.run([*base, *args], capture_output=True, timeout=120, cwd=cwd, check=True)


def _png_rows(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and raw scanlines (filter byte first) of an 8-bit RGB(A) PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(png):
        n = int.from_bytes(png[pos : pos + 4], "big")
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            channels = {2: 3, 6: 4}[body[9]]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = width * channels + 1
    return width, height, [raw[i * stride : (i + 1) * stride] for i in range(height)]


@requires_chromium
def test_every_plot_renders_in_headless_chromium(replayed_store: Store, tmp_path: Path) -> None:
    page = build_report(replayed_store, tmp_path / "report.html")
    dom = _chromium("--dump-dom", page.as_uri(), cwd=tmp_path).stdout.decode()
    sections = re.findall(
        r'<section class="panel" id="panel-(\w+)" data-state="(\w+)">(.*?)</section>', dom, re.S
    )
    assert len(sections) == 6
    plots = [(key, body) for key, state, body in sections if state == "plot"]
    assert len(plots) >= 5, [k for k, s, _ in sections if s != "plot"]
    for key, body in plots:
        assert body.count('class="main-svg"') >= 2, f"{key}: plotly drew no SVG"
        marks = len(re.findall(r'class="(?:point|box|trace scatter|scatterlayer|barlayer)', body))
        assert marks > 0 and re.search(r'<path[^>]+d="M[\d.]+,[\d.]+[LHV]', body), f"{key}: empty plot"
    shot = tmp_path / "report.png"
    _chromium("--window-size=1280,3200", f"--screenshot={shot}", page.as_uri(), cwd=tmp_path)
    width, height, rows = _png_rows(shot.read_bytes())
    assert (width, height) == (1280, 3200)
    # A blank page compresses to identical scanlines; a drawn one has many distinct ones.
    assert len(set(rows)) > 500
