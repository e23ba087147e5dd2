"""The recurrent cells: each one's step written as the math reads, and the same cell over a whole
right-padded batch in one call of torch's fused kernels (cuDNN on GPU).

A cell is the rule that makes the next state from the input x_t and the previous state h. It owns
no weights: the classifier holds W (input -> gates) and U (state -> gates), nn.Linear layers whose
rows stack the gates in torch's order, so that torch's kernels take them as they are
(W = weight_ih, U = weight_hh, with their biases b_i and b_h):

    rnn   h = tanh(W x + U h)                                   the notebook's cell; 1 gate
    gru   r = sigmoid(W_r x + U_r h)                            gates r, z, n
          z = sigmoid(W_z x + U_z h)
          n = tanh(W_n x + r * (U_n h))                         U_n h carries its bias b_hn, as in torch
          h = (1 - z) * n + z * h
    lstm  i, f, o = sigmoid(W_i x + U_i h), ... ; g = tanh(W_g x + U_g h)    gates i, f, g, o
          c = f * c + i * g
          h = o * tanh(c)                                       the state is the pair (h, c)

Every cell starts from the zero state. ``step`` is the readable reference; ``sequence`` must
compute the same function (tests/test_model.py holds them equal, values and gradients).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from textrnn import accel

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def _torch_weights(W: nn.Linear, U: nn.Linear) -> list[torch.Tensor]:
    return [W.weight, U.weight, W.bias, U.bias]


def _quietly(kernel, *args):
    with warnings.catch_warnings():
        # cuDNN copies W and U into one flat buffer per call; at these sizes that is cheap.
        warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
        return kernel(*args)


def _hand_written_rnn_tanh(inputs: torch.Tensor, W: nn.Linear, U: nn.Linear, h0: torch.Tensor):
    """textrnn's own CPU kernel (float32, hidden % 16 == 0, up to 256), or None where it does not apply."""
    if not accel.applies(inputs, U.in_features):
        return None
    return accel.rnn_tanh(_projected(inputs, W, U), h0, U.weight)


def _projected(inputs: torch.Tensor, W: nn.Linear, U: nn.Linear, scratch: Scratch | None = None) -> torch.Tensor:
    """W x_t with both biases, the part of every step that does not depend on the state.

    Into ``scratch``'s buffer when given: the same addmm that nn.functional.linear runs on a
    contiguous batch, so the same bits, without a fresh tensor per batch.
    """
    if scratch is None:
        return nn.functional.linear(inputs, W.weight, W.bias + U.bias)
    flat = inputs.reshape(-1, inputs.shape[-1])
    out = scratch.take("projected", (len(flat), W.out_features), W.weight)
    return torch.addmm(W.bias + U.bias, flat, W.weight.t(), out=out).view(*inputs.shape[:-1], W.out_features)


class Scratch:
    """Buffers that scoring reuses from batch to batch, one per name, each sized for ``rows`` rows.

    A fresh tensor of tens of MB costs a page fault per 4 KiB on every batch; a reused one, none.
    A request for more rows than the buffer holds replaces it with a larger one.
    """

    def __init__(self, rows: int):
        self.rows = rows
        self._buffers: dict[str, torch.Tensor] = {}

    def take(self, name: str, shape: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
        """A [rows, columns] view at the start of buffer ``name`` (contents undefined), ``like``'s device and dtype."""
        rows, columns = shape
        buffer = self._buffers.get(name)
        if (
            buffer is None
            or buffer.numel() < rows * columns
            or (buffer.dtype, buffer.device) != (like.dtype, like.device)
        ):
            buffer = torch.empty(max(rows, self.rows) * columns, dtype=like.dtype, device=like.device)
            self._buffers[name] = buffer
        return buffer[: rows * columns].view(rows, columns)


class Cell:
    name: str
    gates: int  # blocks of hidden_size rows in W and U

    def initial_state(self, batch: int, like: torch.Tensor) -> State:
        """Zeros [batch, hidden] on ``like``'s (U's weight) device and dtype."""
        return torch.zeros(batch, like.shape[1], device=like.device, dtype=like.dtype)

    def output(self, state: State) -> torch.Tensor:
        """The part of the state that the readout sees (h)."""
        return state

    def step(self, W: nn.Linear, U: nn.Linear, x: torch.Tensor, state: State) -> State:
        """One time step: inputs x [batch, embedding] -> the next state."""
        raise NotImplementedError

    def sequence(self, W: nn.Linear, U: nn.Linear, inputs: torch.Tensor, training: bool) -> torch.Tensor:
        """Every h_t [batch, time, hidden] of batch-first ``inputs``, from the zero state, in one fused call.

        Rows run to the batch's full width: a row's states after its own last token are
        not its review's, and the caller reads only the states it means.
        """
        raise NotImplementedError

    def has_last_state(self, U: nn.Linear) -> bool:
        """Whether ``last_state`` runs for weights like ``U``'s (device, dtype, size)."""
        return False

    def last_state(
        self, W: nn.Linear, U: nn.Linear, inputs: torch.Tensor, lengths: torch.Tensor, scratch: Scratch | None = None
    ) -> torch.Tensor:
        """Each row's h after its own first ``lengths[b]`` inputs [batch, hidden], bit for bit the state
        ``sequence`` gives at step lengths[b] - 1 (the zero state for a length of 0), without keeping
        the other steps' states. Forward only (no gradient); ``scratch`` holds its temporaries.
        Only where ``has_last_state``."""
        raise NotImplementedError


class RNNCell(Cell):
    name, gates = "rnn", 1

    def step(self, W, U, x, state):
        return torch.tanh(W(x) + U(state))

    def sequence(self, W, U, inputs, training):
        h0 = self.initial_state(inputs.shape[0], U.weight)
        states = _hand_written_rnn_tanh(inputs, W, U, h0)
        if states is None:
            states, _ = _quietly(
                torch.rnn_tanh, inputs, h0[None], _torch_weights(W, U), True, 1, 0.0, training, False, True
            )
        return states

    def has_last_state(self, U):
        return accel.applies(U.weight, U.in_features)  # torch's rnn_tanh keeps every state

    def last_state(self, W, U, inputs, lengths, scratch=None):
        h0 = self.initial_state(inputs.shape[0], U.weight)
        return accel.rnn_tanh_last(_projected(inputs, W, U, scratch), h0, U.weight, lengths)


class GRUCell(Cell):
    name, gates = "gru", 3

    def step(self, W, U, x, state):
        x_r, x_z, x_n = W(x).chunk(3, dim=-1)
        h_r, h_z, h_n = U(state).chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (1 - z) * n + z * state

    def sequence(self, W, U, inputs, training):
        h0 = self.initial_state(inputs.shape[0], U.weight)
        states, _ = _quietly(torch.gru, inputs, h0[None], _torch_weights(W, U), True, 1, 0.0, training, False, True)
        return states


class LSTMCell(Cell):
    name, gates = "lstm", 4

    def initial_state(self, batch, like):
        return super().initial_state(batch, like), super().initial_state(batch, like)

    def output(self, state):
        return state[0]

    def step(self, W, U, x, state):
        h, c = state
        i, f, g, o = (W(x) + U(h)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def sequence(self, W, U, inputs, training):
        h0, c0 = self.initial_state(inputs.shape[0], U.weight)
        states, _, _ = _quietly(
            torch.lstm, inputs, (h0[None], c0[None]), _torch_weights(W, U), True, 1, 0.0, training, False, True
        )
        return states


CELLS: dict[str, Cell] = {cell.name: cell for cell in (RNNCell(), GRUCell(), LSTMCell())}
