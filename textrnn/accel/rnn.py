"""The tanh RNN's whole recurrence, forward and backpropagation through time, in one kernel call per batch;
and its forward-only variant for scoring, which keeps only each row's state at its own last step."""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch
from torch.autograd.function import once_differentiable

from textrnn.accel import kernel


def applies(like: torch.Tensor, hidden: int) -> bool:
    """Whether ``rnn_tanh`` takes inputs on ``like``'s device and dtype with this hidden size."""
    # The kernels' build comes last: on a GPU machine it never runs for nothing.
    return (
        kernel.is_enabled()
        and like.device.type == "cpu"
        and like.dtype == torch.float32
        and hidden % 16 == 0
        and kernel.available()
        and hidden <= kernel.loaded().max_hidden
    )


class _RNNTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs: torch.Tensor, h0: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        inputs, h0, weight = inputs.contiguous(), h0.contiguous(), weight.contiguous()
        states = torch.empty_like(inputs)
        kernel.loaded().rnn_tanh_forward(inputs, h0, weight, states)
        ctx.save_for_backward(states, h0, weight)
        return states

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_states: torch.Tensor):
        states, h0, weight = ctx.saved_tensors
        grad_inputs, grad_h0 = torch.empty_like(states), torch.empty_like(h0)
        kernel.loaded().rnn_tanh_backward(grad_states.contiguous(), states, weight, grad_inputs, grad_h0)
        grad_weight = None
        if ctx.needs_input_grad[2]:
            # dL/dU = sum over rows and steps of dz_t h_{t-1}^T: one matrix product over all of them.
            hidden = states.shape[2]
            previous = torch.cat([h0[:, None], states[:, :-1]], dim=1)
            grad_weight = grad_inputs.reshape(-1, hidden).t().mm(previous.reshape(-1, hidden))
        return grad_inputs, grad_h0 if ctx.needs_input_grad[1] else None, grad_weight


def rnn_tanh(inputs: torch.Tensor, h0: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """All states h_t = tanh(inputs_t + weight h_{t-1}) [batch, time, hidden] of a batch-first sequence.

    ``inputs`` already hold x_t W^T and both biases; check ``applies(inputs, hidden)`` first.
    """
    return _RNNTanh.apply(inputs, h0, weight)


def rnn_tanh_last(
    inputs: torch.Tensor, h0: torch.Tensor, weight: torch.Tensor, lengths: torch.Tensor, threads: int | None = None
) -> torch.Tensor:
    """Each row's state after its own last step [batch, hidden]: ``rnn_tanh(...)[b, lengths[b] - 1]``
    bit for bit (``h0[b]`` where ``lengths[b]`` is 0), without keeping every step's state.

    For scoring: it has no gradient. ``lengths`` lie in 0 .. the inputs' steps; check ``applies``
    first. The rows are split over ``threads`` threads (None: torch's intra-op thread count);
    a row's state is the same whichever thread runs it.
    """
    if torch.is_grad_enabled() and any(t.requires_grad for t in (inputs, h0, weight)):
        raise RuntimeError(
            "rnn_tanh_last has no gradient; call it under torch.no_grad() or "
            "torch.inference_mode(), or use rnn_tanh to train"
        )
    inputs, h0, weight = inputs.contiguous(), h0.contiguous(), weight.contiguous()
    lengths = lengths.to(device="cpu", dtype=torch.int64).contiguous()
    if lengths.shape != inputs.shape[:1]:
        raise ValueError(f"rnn_tanh_last: {tuple(lengths.shape)} lengths for {inputs.shape[0]} rows")
    last = torch.empty_like(h0)
    kernels = kernel.loaded()
    chunks = _row_chunks(len(inputs), torch.get_num_threads() if threads is None else threads)

    def run(chunk: slice) -> None:
        kernels.rnn_tanh_last(inputs[chunk], h0[chunk], weight, lengths[chunk], last[chunk])

    if len(chunks) == 1:
        run(chunks[0])
    else:  # ctypes releases the GIL for the call: the chunks run at once
        list(_pool(len(chunks)).map(run, chunks))
    return last


# Rows per thread at least: below this, starting a thread costs more than the rows' steps.
MIN_ROWS_PER_THREAD = 8
_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()
os.register_at_fork(after_in_child=_pools.clear)  # a forked child has none of the parent's threads


def _row_chunks(rows: int, threads: int) -> list[slice]:
    """``rows`` in at most ``threads`` contiguous, nearly equal runs of MIN_ROWS_PER_THREAD rows at least."""
    count = max(1, min(threads, rows // MIN_ROWS_PER_THREAD))
    bounds = [rows * i // count for i in range(count + 1)]
    return [slice(start, end) for start, end in itertools.pairwise(bounds)]


def _pool(workers: int) -> ThreadPoolExecutor:
    with _pools_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="textrnn-rnn-tanh-last")
        return _pools[workers]
