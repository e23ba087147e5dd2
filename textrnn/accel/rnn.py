"""The tanh RNN's whole recurrence, forward and backpropagation through time, in one kernel call per batch;
its input projection, whose rows round the same whatever the batch; and the forward-only variant for
scoring, which reads each token's projection from a table and keeps only each row's state at its own last step."""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
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
        and hidden <= kernel.required().max_hidden
    )


class _RNNTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs: torch.Tensor, h0: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        inputs, h0, weight = inputs.contiguous(), h0.contiguous(), weight.contiguous()
        states = torch.empty_like(inputs)
        kernel.required().rnn_tanh_forward(inputs, h0, weight, states)
        ctx.save_for_backward(states, h0, weight)
        return states

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_states: torch.Tensor):
        states, h0, weight = ctx.saved_tensors
        grad_inputs, grad_h0 = torch.empty_like(states), torch.empty_like(h0)
        kernel.required().rnn_tanh_backward(grad_states.contiguous(), states, weight, grad_inputs, grad_h0)
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


class _Project(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x, weight, bias = x.contiguous(), weight.contiguous(), bias.contiguous()
        out = x.new_empty(len(x), len(weight))
        kernels = kernel.required()
        _run_in_chunks(len(x), None, lambda rows: kernels.project(x[rows], weight, bias, out[rows]))
        ctx.save_for_backward(x, weight)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        # The products autograd takes for torch.addmm(bias, x, weight.t()), so the same bits as nn.Linear's.
        x, weight = ctx.saved_tensors
        grad_x = grad.mm(weight) if ctx.needs_input_grad[0] else None
        grad_weight = grad.t().mm(x) if ctx.needs_input_grad[1] else None
        return grad_x, grad_weight, grad.sum(0) if ctx.needs_input_grad[2] else None


def project(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x weight^T + bias ([..., K] -> [..., H]), as nn.functional.linear, with a fixed rounding: each
    output is its K products summed in order of k, then the bias added, so that a row's result is the
    same in any batch, at any thread count, on any CPU. Check ``applies(x, H)`` first."""
    out = _Project.apply(x.reshape(-1, x.shape[-1]), weight, bias)
    return out.view(*x.shape[:-1], weight.shape[0])


def rnn_tanh_last(
    table: torch.Tensor,
    ids: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    weight: torch.Tensor,
    reverse: bool = False,
    threads: int | None = None,
) -> torch.Tensor:
    """Each row's state [rows, hidden] after its tokens ``ids[starts[b] : starts[b] + lengths[b]]``
    (last to first when ``reverse``), from the zero state, the inputs being ``table``'s rows (the
    ``project``ion of each id): ``rnn_tanh(table[tokens], 0, weight)[b, lengths[b] - 1]`` bit for bit,
    zeros for an empty row, without padding or keeping every step's state.

    For scoring: it has no gradient. Check ``applies`` first. The rows are split over ``threads``
    threads (None: torch's intra-op thread count) in runs of about equal tokens; a row's state is
    the same whichever thread runs it. Rows of similar lengths side by side run fastest: the
    kernel steps rows in pairs, each pair to its longer row.
    """
    if torch.is_grad_enabled() and any(t.requires_grad for t in (table, weight)):
        raise RuntimeError(
            "rnn_tanh_last has no gradient; call it under torch.no_grad() or "
            "torch.inference_mode(), or use rnn_tanh to train"
        )
    table, weight = table.contiguous(), weight.contiguous()
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    starts, lengths = (np.ascontiguousarray(a, dtype=np.int64) for a in (starts, lengths))
    if starts.shape != lengths.shape or starts.ndim != 1:
        raise ValueError(f"rnn_tanh_last: {starts.shape} starts for {lengths.shape} lengths")
    last = table.new_empty(len(starts), table.shape[1])
    kernels = kernel.required()

    def run(rows: slice) -> None:
        kernels.rnn_tanh_last(table, ids, starts[rows], lengths[rows], reverse, weight, last[rows])

    _run_in_chunks(len(starts), threads, run, cost=lengths + 1)  # a row's steps, and its own setup
    return last


def _run_in_chunks(rows: int, threads: int | None, run, cost: np.ndarray | None = None) -> None:
    """``run(chunk)`` for each of ``_row_chunks``' slices of ``rows``, at once on a thread each."""
    chunks = _row_chunks(rows, torch.get_num_threads() if threads is None else threads, cost)
    if len(chunks) == 1:
        run(chunks[0])
    else:  # ctypes releases the GIL for the call: the chunks run at once
        list(_pool(len(chunks)).map(run, chunks))


# Rows per thread at least: below this, starting a thread costs more than the rows' steps.
MIN_ROWS_PER_THREAD = 8
_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()
os.register_at_fork(after_in_child=_pools.clear)  # a forked child has none of the parent's threads


def _row_chunks(rows: int, threads: int, cost: np.ndarray | None = None) -> list[slice]:
    """``rows`` in at most ``threads`` contiguous runs of MIN_ROWS_PER_THREAD rows at least, nearly
    equal in row count, or in total ``cost`` (each row's work) where given."""
    count = max(1, min(threads, rows // MIN_ROWS_PER_THREAD))
    if cost is None or count == 1:
        bounds = [rows * i // count for i in range(count + 1)]
    else:
        total = np.cumsum(cost, dtype=np.float64)
        cuts = np.searchsorted(total, total[-1] * np.arange(1, count) / count, side="right")
        bounds = sorted({0, rows, *cuts.tolist()})
    return [slice(start, end) for start, end in itertools.pairwise(bounds)]


def _pool(workers: int) -> ThreadPoolExecutor:
    with _pools_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="textrnn-rnn-tanh-last")
        return _pools[workers]
