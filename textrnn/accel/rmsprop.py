"""torch.optim.RMSprop with a one-pass step per float32 CPU tensor (csrc/rmsprop.cpp)."""

from __future__ import annotations

import torch

from textrnn.accel import kernel


def _step_dtype() -> torch.dtype:
    """The dtype of torch's step count: float32, or float64 where that is the default dtype."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class RMSprop(torch.optim.RMSprop):
    """torch.optim.RMSprop whose step is one fused pass per float32 CPU tensor.

    The same formula in the same order of operations, and the same state (``step``,
    ``square_avg``), so that either optimizer can continue the other's. Momentum, centered, weight
    decay, maximize, other devices or dtypes, and kernels that did not build all take torch's step.
    """

    def _fused(self) -> bool:
        if not kernel.is_enabled():
            return False
        for group in self.param_groups:
            if (
                group["momentum"]
                or group["centered"]
                or group["weight_decay"]
                or group["maximize"]
                or group["differentiable"]
                or group["capturable"]
                or torch.is_tensor(group["lr"])
            ):
                return False
            for p in group["params"]:
                if p.grad is not None and not (
                    p.device.type == "cpu"
                    and p.dtype == torch.float32
                    and p.is_contiguous()
                    and p.grad.layout == torch.strided
                    and p.grad.is_contiguous()
                    and p.grad.dtype == torch.float32
                ):
                    return False
        return kernel.available()  # last: on a GPU machine the kernels are never built for nothing

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None or not self._fused():
            return super().step(closure)
        kernels = kernel.required()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    state = self.state[p]
                    if not state:  # as torch.optim.RMSprop creates it (tests/test_accel.py compares the two)
                        state["step"] = torch.zeros((), dtype=_step_dtype())
                        state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["step"] += 1
                    kernels.rmsprop_step(p, p.grad, state["square_avg"], group["lr"], group["alpha"], group["eps"])
        return None
