"""Where the translator runs: the device, the mixed-precision rule, the process group.

One rule for training, translation and the benchmarks (``precision``):

- ``"auto"`` (default): bf16 autocast on a CUDA GPU that supports bf16, fp32 elsewhere
  (a CPU without bf16 instructions runs bf16 several times slower than fp32);
- ``"bf16"``: bf16 autocast on whatever device runs it, the CPU included (what the test
  suite uses to run the GPU's code path on a CPU);
- ``"fp32"``: no autocast.

fp16 is not offered: it needs loss scaling (a ``GradScaler``) for the GAN losses, and
bf16 has fp32's range without it. Under autocast the networks run in bf16; every loss is
computed in fp32 (the loss functions cast their inputs), and the weights, gradients and
optimiser state stay fp32.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from .config import precision_problem


def pick_device(device: str | None) -> torch.device:
    """``auto``/None: the first CUDA GPU if PyTorch sees one, else the CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        from ..errors import Sim2RealError

        raise Sim2RealError("--device cuda requested but PyTorch sees no CUDA GPU; use --device cpu")
    return torch.device(device)


def check_precision(precision: str, what: str = "precision") -> None:
    """A one-line :class:`ConfigError` for a precision this package does not offer."""
    problem = precision_problem(precision)
    if problem:
        from ..errors import ConfigError

        raise ConfigError(f"{what} {problem}")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype ``precision`` means on ``device`` (None: fp32, no autocast)."""
    check_precision(precision)
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16"}[dtype]


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast to ``dtype`` on ``device``'s type; a no-op context for fp32."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def dist_info() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a torchrun job."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
