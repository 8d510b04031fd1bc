"""Assemble panels into one self-contained HTML page: plotly.js is inlined once in the head, so the
file opens from a mail attachment or an air-gapped laptop with no network at all."""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.io as pio
from plotly.offline import get_plotlyjs

from breakfix.report.panels import Panel

_CSS = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 16px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 4px; }
.meta { color: #555; margin-bottom: 16px; }
.summary { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 16px; }
.summary div { background: #f4f6f8; border-radius: 6px; padding: 8px 14px; }
.summary b { display: block; font-size: 1.4em; }
section.panel { border: 1px solid #ddd; border-radius: 6px; margin-bottom: 18px; padding: 10px 14px; }
section.panel h2 { font-size: 1.15em; margin: 4px 0; }
section.panel p.explains { color: #555; margin: 4px 0 8px; font-size: 0.92em; }
.no-data { background: #fafafa; border: 2px dashed #bbb; color: #666; padding: 40px; text-align: center;
           font-size: 1.1em; }
"""


def _panel_html(p: Panel) -> str:
    if p.figure is None:
        body = f'<div class="no-data"><b>No data.</b> {html.escape(p.empty)}</div>'
    else:
        body = pio.to_html(
            p.figure,
            full_html=False,
            include_plotlyjs=False,
            div_id=f"plot-{p.key}",
            config={"displaylogo": False, "responsive": True},
        )
    state = "empty" if p.figure is None else "plot"
    return (
        f'<section class="panel" id="panel-{p.key}" data-state="{state}">'
        f'<h2>{html.escape(p.title)}</h2><p class="explains">{html.escape(p.explains)}</p>{body}</section>'
    )


def render(title: str, meta: str, summary: Sequence[tuple[str, str]], panels: Sequence[Panel]) -> str:
    """The whole page as a string; ``summary`` is (label, figure) pairs shown as tiles."""
    tiles = "".join(f"<div><b>{html.escape(v)}</b>{html.escape(k)}</div>" for k, v in summary)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f'<h1>{html.escape(title)}</h1><div class="meta">{html.escape(meta)}</div>'
        f'<div class="summary">{tiles}</div>' + "".join(_panel_html(p) for p in panels) + "</body></html>"
    )
