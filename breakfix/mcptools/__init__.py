"""MCP tools over the operator API (named ``mcptools`` so it never shadows the ``mcp`` SDK)."""

from breakfix.mcptools.serve import serve
from breakfix.mcptools.server import build_server

__all__ = ["build_server", "serve"]
