"""``python -m breakfix.mcptools``: the MCP server on stdio, API and token from the environment."""

from breakfix.mcptools.serve import serve
from breakfix.opsclient import ApiTarget

serve(ApiTarget.resolve())
