"""Training precision and memory layout: bf16 autocast where the hardware has bf16 units, channels-last tensors.

`amp` in a training config is true, false or "auto". "auto" turns bf16 autocast on where it is fast: a CUDA GPU
with bf16 support, or a CPU with AVX512-BF16 or AMX tiles (oneDNN's bf16 kernels); elsewhere (an AVX2-only CPU,
where bf16 is emulated and slower than fp32) it stays off. `describe()` says what was detected, for logs and
`iseg.bench`. Losses are always computed in fp32 (`iseg.training.losses`).
"""

from __future__ import annotations

import torch

def cpu_bf16_units() -> list[str]:
    """The CPU's bf16 units that oneDNN uses: 'AMX' and/or 'AVX512-BF16' (empty when it has none)."""
    units = []
    if torch.cpu._is_amx_tile_supported():
        units.append("AMX")
    if torch.cpu._is_avx512_bf16_supported():
        units.append("AVX512-BF16")
    return units


def bf16_fast(device: torch.device) -> bool:
    """True when bf16 autocast speeds up training on `device` (see the module docstring)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool(cpu_bf16_units())


def check_amp(value: object) -> None:
    """Refuse an `amp` setting that is not true, false or 'auto'."""
    if not (value is True or value is False or value == "auto"):
        raise ValueError(f"training config key 'amp' must be true, false or 'auto', got {value!r}")


def use_amp(setting: bool | str, device: torch.device) -> bool:
    """Whether a run with `amp: setting` autocasts to bf16 on `device`."""
    check_amp(setting)
    return bf16_fast(device) if setting == "auto" else bool(setting)


def autocast(device: torch.device, setting: bool | str) -> torch.autocast:
    """bf16 autocast on `device` when `setting` (an `amp` value) turns it on there."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp(setting, device))


def describe(device: torch.device) -> str:
    """One line on the device's bf16 support, e.g. 'cpu: bf16 units AVX512-BF16'."""
    if device.type == "cuda":
        return f"cuda: bf16 {'supported' if torch.cuda.is_bf16_supported() else 'not supported'}"
    units = cpu_bf16_units()
    return f"cpu: bf16 units {', '.join(units)}" if units else "cpu: no bf16 units (AVX512-BF16 or AMX)"
