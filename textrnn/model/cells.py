"""The recurrent cells: each one's step written as the math reads, and the same cell over a whole
right-padded batch in one call of torch's fused kernels (cuDNN on GPU).

A cell is the rule that makes the next state from the input x_t and the previous state h. It owns
no weights: the classifier holds W (input -> gates) and U (state -> gates), nn.Linear layers whose
rows stack the gates in torch's order, so that torch's kernels take them as they are
(W = weight_ih, U = weight_hh, with their biases b_i and b_h):

    rnn   h = tanh(W x + U h)                                   the course notebook's cell; 1 gate
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

import numpy as np
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
    """textrnn's own CPU kernels (float32, hidden % 16 == 0, up to 256), or None where they do not apply."""
    if not accel.applies(inputs, U.in_features):
        return None
    return accel.rnn_tanh(_projected(inputs, W, U), h0, U.weight)


def _projected(inputs: torch.Tensor, W: nn.Linear, U: nn.Linear) -> torch.Tensor:
    """W x_t with both biases, the part of every step that does not depend on the state, each row
    rounded as on its own (accel.project), so that a vocabulary id's row is the same in every batch."""
    return accel.project(inputs, W.weight, W.bias + U.bias)


class Cell:
    name: str
    gates: int  # blocks of hidden_size rows in W and U

    def initial_state(self, batch: int, like: torch.Tensor) -> State:
        """Zeros [batch, hidden] on ``like``'s (U's weight) device and dtype."""
        return torch.zeros(batch, like.shape[1], device=like.device, dtype=like.dtype)

    def output(self, state: State) -> torch.Tensor:
        """The part of the state that the readout sees (h)."""
        assert isinstance(state, torch.Tensor)  # a cell whose state is a pair (lstm) overrides this
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
        """Whether ``projection_table`` and ``last_state`` run for weights like ``U``'s (device, dtype, size)."""
        return False

    def projection_table(self, W: nn.Linear, U: nn.Linear, embeddings: torch.Tensor) -> torch.Tensor:
        """The part of a step that depends on the token only, for each row of ``embeddings`` [ids, embedding]
        -> [ids, hidden], bit for bit what ``sequence`` computes for that token. Only where ``has_last_state``."""
        raise NotImplementedError

    def last_state(
        self,
        U: nn.Linear,
        table: torch.Tensor,
        ids: np.ndarray,
        starts: np.ndarray,
        lengths: np.ndarray,
        reverse: bool = False,
    ) -> torch.Tensor:
        """Each row's h [rows, hidden] after its tokens ``ids[starts[b] : starts[b] + lengths[b]]`` (last
        to first when ``reverse``), their ``projection_table`` rows in ``table``: bit for bit the state
        ``sequence`` gives at step lengths[b] - 1 over those tokens (the zero state for a length of 0),
        without padding or keeping the other steps' states. Forward only (no gradient). Only where
        ``has_last_state``."""
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

    def projection_table(self, W, U, embeddings):
        return _projected(embeddings, W, U)

    def last_state(self, U, table, ids, starts, lengths, reverse=False):
        return accel.rnn_tanh_last(table, ids, starts, lengths, U.weight, reverse)


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
