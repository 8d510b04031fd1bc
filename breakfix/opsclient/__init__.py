"""Typed client for the operator HTTP API, shared by the CLI verbs and the MCP tools."""

from breakfix.opsclient.client import OpsClient
from breakfix.opsclient.config import ApiTarget
from breakfix.opsclient.errors import ApiError

__all__ = ["ApiError", "ApiTarget", "OpsClient"]
