"""SLURM actuator: drain / resume / reboot through scontrol, reads through sinfo/squeue --json."""

from actuators.slurm.actuator import SlurmActuator
from actuators.slurm.client import SlurmClient

__all__ = ["SlurmActuator", "SlurmClient"]
