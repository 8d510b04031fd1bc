"""The GPU recovery action the NVIDIA driver recommends, as NVML reports it and breakfix names it.

NVML answers ``NVML_FI_DEV_GET_GPU_RECOVERY_ACTION`` with an ``nvmlDeviceGpuRecoveryAction_t``
(codes as nvidia-ml-py's ``NVML_GPU_RECOVERY_ACTION_*`` constants publish them). NVIDIA's "Error
Recovery and Response Flags" (GPU memory error management guide) says what each asks of the
operator: none, reset the GPU (``nvidia-smi -r``), reboot the node, drain peer-to-peer traffic then
ask again, or drain and reset. ``gpu.sample`` carries the name, so consumers never need the codes.
"""

from __future__ import annotations

RECOVERY_ACTIONS: dict[int, str] = {
    0: "none",
    1: "gpu_reset",
    2: "node_reboot",
    3: "drain_p2p",
    4: "drain_and_reset",
    5: "recover_imex_domain",
    6: "bus_reset",
    7: "system_reboot",
}


def recovery_action_name(code: int) -> str:
    """The name of an NVML recovery-action code; a code this table predates stays visible.

    >>> recovery_action_name(1), recovery_action_name(42)
    ('gpu_reset', 'action_42')
    """
    return RECOVERY_ACTIONS.get(code, f"action_{code}")
