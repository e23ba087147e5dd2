"""textrnn's CPU accelerator: hand-written kernels for the RNN and RMSprop, and the CPU settings for training.

One switch turns the kernels off: the environment variable ``TEXTRNN_FUSED_CPU=0`` for a whole
process, ``enabled(False)`` for a block (tests and benchmarks compare both). Off, or where they
cannot be built (no C++ compiler), training runs on PyTorch's own kernels: the same math,
rounded differently.

    applies(x, hidden), rnn_tanh(...)   the tanh recurrence, forward and BPTT, in one call
    project(x, weight, bias)            its input projection, rounded the same in any batch
    rnn_tanh_last(...)                  its forward only, for scoring: inputs from a projection table by
                                        token id, only each row's last state kept
    RMSprop                             torch.optim.RMSprop, one pass per float32 CPU tensor
    cpu_settings(device)                the CPU settings training runs under
"""

from textrnn.accel.cpu import cpu_settings
from textrnn.accel.kernel import SWITCH, available, enabled
from textrnn.accel.rmsprop import RMSprop
from textrnn.accel.rnn import applies, project, rnn_tanh, rnn_tanh_last

__all__ = [
    "SWITCH",
    "RMSprop",
    "applies",
    "available",
    "cpu_settings",
    "enabled",
    "project",
    "rnn_tanh",
    "rnn_tanh_last",
]
