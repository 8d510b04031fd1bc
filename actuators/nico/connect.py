"""Build the NICo clients one configuration describes (REST always, gRPC when the core is named)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc

from actuators.nico.actuator import NicoActuator
from actuators.nico.config import NicoConfig, NicoConfigError, load_config
from actuators.nico.health import GrpcHealthReports
from actuators.nico.rest import NicoRest
from actuators.registry import BuildContext


@dataclass
class NicoClients:
    cfg: NicoConfig
    rest: NicoRest
    health: GrpcHealthReports | None
    close: Callable[[], None]

    def actuator(self) -> NicoActuator:
        return NicoActuator(self.cfg, self.rest, self.health)


def connect(cfg: NicoConfig) -> NicoClients:
    rest = NicoRest(cfg.url, cfg.org, cfg.token, api_name=cfg.api_name)
    channel: grpc.Channel | None = None
    if cfg.grpc_target:
        channel = (
            grpc.secure_channel(cfg.grpc_target, grpc.ssl_channel_credentials())
            if cfg.grpc_tls
            else grpc.insecure_channel(cfg.grpc_target)
        )
    health = GrpcHealthReports(channel, cfg.token) if channel is not None else None

    def close() -> None:
        rest.close()
        if channel is not None:
            channel.close()

    return NicoClients(cfg, rest, health, close)


def build(ctx: BuildContext) -> NicoActuator:
    """The kind's builder (``actuators.registry``), behind ``--nico FILE`` and ``--actuator nico=FILE``."""
    if ctx.config is None:
        raise NicoConfigError("the nico actuator needs its config file: --nico FILE")
    clients = connect(load_config(ctx.config))
    ctx.on_close(clients.close)
    return clients.actuator()
