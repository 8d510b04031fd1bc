"""The parameters a node-agent command may carry, typed: a command with a bad one is refused.

``ActionRequest.params`` is a free-form map in the contract, so a command can be schema-valid and
still carry ``timeout_s: "soon"`` or ``gpu: "all"``. Converting those inside the handler raised out
of it; the loop never committed the command, so the restarted agent read it again and crashed again,
forever. Every parameter is now checked here, before anything runs, and a bad one is answered
``refused`` with its name and what is wrong: the command is committed and the agent carries on.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ACTIONS = frozenset({"gpu_reset", "reboot", "dcgm_diag", "collect_bundle", "cleanup_stale"})
"""What a node agent runs; anything else is refused by name."""
MUTATING = frozenset({"gpu_reset", "reboot", "cleanup_stale"})
"""The commands that change the node, so the agent journals them and validation must follow."""


class CommandParams(BaseModel):
    """What the agent reads of ``params``; other keys (playbook step parameters) are ignored."""

    model_config = ConfigDict(extra="ignore", strict=False)

    timeout_s: float = Field(300.0, gt=0, le=86_400, allow_inf_nan=False)
    gpu: int | None = Field(None, ge=0, le=1023)
    level: int | None = None
    dcgm_level: int | None = None
    sections: list[str] = Field(default_factory=list)


def parse_params(raw: dict[str, Any]) -> CommandParams | str:
    """The typed parameters, or a one-line reason naming each bad one."""
    try:
        return CommandParams.model_validate(raw)
    except ValidationError as err:
        bad = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        return f"bad command parameter(s): {bad}"
