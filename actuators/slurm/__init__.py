"""SLURM actuator: drain / resume / reboot through scontrol, reads through sinfo/squeue --json."""

from actuators.slurm.actuator import SlurmActuator
from actuators.slurm.client import SlurmClient, SlurmNodeFacts

__all__ = ["SlurmActuator", "SlurmClient", "SlurmNodeFacts"]
