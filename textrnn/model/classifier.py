"""The classifier: embedding -> recurrent encoder -> readout -> V, with the course notebook's RNN as the default.

The course notebook ("code your own RNN", where the project began: docs/model.md) reads a review
one token at a time, h_t = tanh(W x_t + U h_{t-1}), and classifies its last state: logits = V h_T.
The options of ModelConfig change one piece each:

- ``cell``: the rule that makes h_t (textrnn/model/cells.py): ``rnn`` (the notebook's), ``gru``, ``lstm``.
- ``bidirectional``: a second cell (W_reverse, U_reverse) also reads each review backwards, from
  its own last real token; a token's state is then [h->_t, h<-_t].
- ``readout``: what V reads: ``last`` (the forward state at the last real token, with the reverse
  direction's state at the first token, each having read the whole review), or the ``mean`` or
  ``max`` of the states over the review's real tokens.
- ``dropout``: in training only, on the embedded tokens and on the features V reads.

Batches are right-padded [batch, time] token ids with each review's length; no pad ever reaches
a state that is read, so a review's logits do not depend on the batch it is in (in eval mode).
An empty review (length 0) reads as the zero features, so its logits are V's bias, for every
readout.

Four ways to run the same model:

- ``forward(tokens, lengths)``: the fused path over a whole batch, for training and scoring
  (what DistributedDataParallel wraps);
- ``scorer(ids)``: forward's logits bit for bit, forward only, for reviews read straight from a
  split's token ids, keeping each review's last state alone where the readout reads nothing else
  (the rnn cell on textrnn.accel's kernels);
- ``forward_loop(tokens, lengths)``: the readable reference, each cell's step in a Python loop;
- ``step(x_t, hidden)``: the notebook's own forward, one token per call, for unidirectional
  models that read the last state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn

from textrnn.model.cells import CELLS, State

READOUTS = ("last", "mean", "max")


@dataclass(frozen=True)
class ModelConfig:
    vocabulary_size: int
    embedding_size: int
    hidden_size: int
    num_classes: int = 2
    cell: str = "rnn"  # rnn (the course notebook's cell), gru or lstm
    bidirectional: bool = False  # also read each review backwards
    readout: str = "last"  # last (the course notebook's readout), mean or max over the real tokens' states
    dropout: float = 0.0  # probability of zeroing an embedded input or a feature of V's input, in training

    def __post_init__(self):
        for name, minimum in [("vocabulary_size", 1), ("embedding_size", 1), ("hidden_size", 1), ("num_classes", 2)]:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"ModelConfig.{name} must be an integer >= {minimum}, got {value!r}")
        if self.cell not in CELLS:
            raise ValueError(f"ModelConfig.cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        if not isinstance(self.bidirectional, bool):
            raise ValueError(f"ModelConfig.bidirectional must be true or false, got {self.bidirectional!r}")
        if self.readout not in READOUTS:
            raise ValueError(f"ModelConfig.readout must be one of {', '.join(READOUTS)}, got {self.readout!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"ModelConfig.dropout must be a number in [0, 1), got {self.dropout!r}")


class RNN(nn.Module):
    """A recurrent classifier; two classes use one logit (BCE), k > 2 classes use k (cross-entropy)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.cell = CELLS[config.cell]
        gates = self.cell.gates * config.hidden_size
        # Created in the course notebook's order (embedding, W, U, V): one seed gives its initial weights.
        self.embedding = nn.Embedding(config.vocabulary_size, config.embedding_size)
        self.W = nn.Linear(config.embedding_size, gates)  # input -> hidden (every gate's rows, stacked)
        self.U = nn.Linear(config.hidden_size, gates)  # previous state -> hidden
        if config.bidirectional:
            self.W_reverse = nn.Linear(config.embedding_size, gates)
            self.U_reverse = nn.Linear(config.hidden_size, gates)
        features = config.hidden_size * (2 if config.bidirectional else 1)
        self.V = nn.Linear(features, 1 if config.num_classes == 2 else config.num_classes)

    def directions(self) -> list[tuple[nn.Linear, nn.Linear]]:
        """(W, U) of each reading direction: forward, then reverse when bidirectional."""
        return [(self.W, self.U)] + ([(self.W_reverse, self.U_reverse)] if self.config.bidirectional else [])

    # ------------------------------------------------------------ the fused path

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits [batch] (two classes) or [batch, classes] of right-padded ``tokens`` [batch, time].

        Each direction runs in one fused call: the rnn cell on float32 CPU tensors through
        textrnn.accel's kernel where it applies, every other case through torch's kernels
        (cuDNN on GPU). The reverse direction reads each review flipped within its own length,
        so it starts at the review's last real token, never at the pads.
        """
        embedded = self.embedding(tokens)
        mask = self._dropout_mask(embedded.shape, embedded)
        if mask is not None:
            embedded = embedded * mask
        states = [self.cell.sequence(self.W, self.U, embedded, self.training)]
        if self.config.bidirectional:
            rows = torch.arange(len(tokens), device=tokens.device)[:, None]
            flipped = _flip_within(lengths, tokens.shape[1])
            backwards = self.cell.sequence(self.W_reverse, self.U_reverse, embedded[rows, flipped], self.training)
            # Flipping within the length is its own inverse: the same index puts h<- back in token order.
            states.append(backwards[rows, flipped])
        return self._classify(states, lengths)

    # ------------------------------------------------------------ scoring

    def scorer(self, ids: np.ndarray) -> Scorer | None:
        """A ``Scorer`` of reviews that are runs of ``ids`` (a split's token ids), where forward's logits
        come from each review's last state alone: eval mode, readout ``last`` and a cell with a
        last-state path (the rnn cell on textrnn.accel's kernels). None otherwise: score with ``forward``."""
        if self.training or self.config.readout != "last" or not self.cell.has_last_state(self.U):
            return None
        return Scorer(self, ids)

    # ------------------------------------------------------------ the readable reference

    def forward_loop(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The same logits as ``forward``, from each cell's step in a Python loop over the batch's tokens.

        A step at a pad leaves the state as it was: the forward direction keeps its state after
        a review's last token, and the reverse direction, walking from the right, stays at the
        initial state until it reaches the review's last real token.
        """
        steps = tokens.shape[1]
        mask = self._dropout_mask((*tokens.shape, self.config.embedding_size), self.U.weight)
        inputs = [self.embedding(tokens[:, t]) for t in range(steps)]
        if mask is not None:
            inputs = [x * mask[:, t] for t, x in enumerate(inputs)]
        real = [(t < lengths)[:, None] for t in range(steps)]
        directions = self.directions()
        orders = [range(steps), range(steps - 1, -1, -1)][: len(directions)]
        states = [self._loop(W, U, inputs, real, order) for (W, U), order in zip(directions, orders, strict=True)]
        return self._classify(states, lengths)

    def _loop(
        self, W: nn.Linear, U: nn.Linear, inputs: list[torch.Tensor], real: list[torch.Tensor], order: Sequence[int]
    ) -> torch.Tensor:
        """The states [batch, time, hidden] of one direction, stepping through the positions in ``order``."""
        state = self.cell.initial_state(len(real[0]), U.weight)
        outputs: list[torch.Tensor | None] = [None] * len(inputs)
        for t in order:
            state = _where(real[t], self.cell.step(W, U, inputs[t], state), state)
            outputs[t] = self.cell.output(state)
        return torch.stack(cast(list[torch.Tensor], outputs), dim=1)  # order visits every position

    # ------------------------------------------------------------ one step, as the course notebook wrote it

    def init_hidden(self, batch_size: int) -> State:
        """The initial state: zeros [batch, hidden] (for the lstm cell, the pair (h, c))."""
        return self.cell.initial_state(batch_size, self.U.weight)

    def step(self, x: torch.Tensor, hidden: State) -> tuple[torch.Tensor, State]:
        """One time step, the course notebook's ``forward``: token ids [batch] -> (logits [batch, outputs], new hidden).

        Chained over a review from ``init_hidden``, the last logits are ``forward``'s (in eval
        mode: the step applies no dropout). Only for unidirectional models that read the last state.
        """
        if self.config.bidirectional or self.config.readout != "last":
            raise ValueError(
                "step() reads one token at a time, so it exists only for unidirectional models "
                f"with readout 'last' (this one: bidirectional={self.config.bidirectional}, "
                f"readout={self.config.readout!r}); use forward(tokens, lengths)"
            )
        hidden = self.cell.step(self.W, self.U, self.embedding(x), hidden)
        return self.V(self.cell.output(hidden)), hidden

    # ------------------------------------------------------------ readout and V

    def _classify(self, states: list[torch.Tensor], lengths: torch.Tensor) -> torch.Tensor:
        return self._logits(self._read_out(states, lengths))

    def _logits(self, features: torch.Tensor) -> torch.Tensor:
        mask = self._dropout_mask(features.shape, features)
        if mask is not None:
            features = features * mask
        logits = self.V(features)
        return logits.squeeze(-1) if self.config.num_classes == 2 else logits

    def _read_out(self, states: list[torch.Tensor], lengths: torch.Tensor) -> torch.Tensor:
        """Features [batch, directions x hidden] from each direction's states [batch, time, hidden] in token order.

        An empty review has no state to read: its features are zeros, the initial state.
        """
        batch, width = states[0].shape[:2]
        has_tokens = (lengths > 0)[:, None]
        if self.config.readout == "last":
            rows = torch.arange(batch, device=lengths.device)
            # Forward: the state at the last real token. Reverse: at the first token, where it has read all.
            picks = [states[0][rows, (lengths - 1).clamp(min=0)]] + [reverse[:, 0] for reverse in states[1:]]
            return _last_features(picks, lengths)
        joined = states[0] if len(states) == 1 else torch.cat(states, dim=2)
        real = (torch.arange(width, device=lengths.device)[None, :] < lengths[:, None])[:, :, None]
        if self.config.readout == "mean":
            total = torch.where(real, joined, torch.zeros_like(joined)).sum(dim=1)
            return total / lengths.clamp(min=1)[:, None].to(total.dtype)
        largest = joined.masked_fill(~real, -torch.inf).amax(dim=1)
        return torch.where(has_tokens, largest, torch.zeros_like(largest))

    def _dropout_mask(self, shape, like: torch.Tensor):
        """A fresh inverted-dropout mask (0 or 1 / (1 - p)) in training with dropout, else None (no draw)."""
        p = self.config.dropout
        if not (self.training and p > 0):
            return None
        return torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(1 - p).div_(1 - p)


class Scorer:
    """``forward``'s logits, bit for bit, for reviews given as runs of a split's token ids (forward only).

    No review is padded and no step's state is kept but each review's last: each direction's
    projection of a token (the part of a step that depends on the token only) is computed once per
    vocabulary id into a table, and the cell's last-state kernel reads it by id. Forward computes
    the same rows token by token, rounded the same (``Cell.projection_table``).
    """

    def __init__(self, model: RNN, ids: np.ndarray):
        self.model = model
        weights = model.embedding.weight.detach()
        if len(ids) < len(weights):  # fewer tokens than ids (a few reviews): a table of the ids that occur
            present, inverse = np.unique(ids, return_inverse=True)
            if len(present) and (present[0] < 0 or present[-1] >= len(weights)):
                raise ValueError(f"a token id lies outside the vocabulary's {len(weights)} ids")
            self.ids = inverse.astype(np.int32).reshape(-1)
            weights = weights[torch.from_numpy(present).to(torch.int64)]
        else:
            self.ids = ids
        with torch.inference_mode():
            self.tables = [model.cell.projection_table(W, U, weights) for W, U in model.directions()]

    @torch.inference_mode()
    def features(self, starts: np.ndarray, lengths: np.ndarray) -> torch.Tensor:
        """What V reads [rows, directions x hidden] for the reviews ``ids[starts[b] : starts[b] + lengths[b]]``:
        each row's own, the same in any set of rows."""
        model = self.model
        picks = [
            model.cell.last_state(U, table, self.ids, starts, lengths, reverse=direction == 1)
            for direction, ((_, U), table) in enumerate(zip(model.directions(), self.tables, strict=True))
        ]
        return _last_features(picks, torch.from_numpy(np.asarray(lengths, dtype=np.int64)))

    @torch.inference_mode()
    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """The logits of ``features`` rows: forward's on the same reviews as one batch, bit for bit
        (V's product rounds by its row count, so the rows must be the batch's)."""
        return self.model._logits(features)


def _last_features(picks: list[torch.Tensor], lengths: torch.Tensor) -> torch.Tensor:
    """Readout ``last``'s features from each direction's picked state [batch, hidden]; zeros for an empty review."""
    features = picks[0] if len(picks) == 1 else torch.cat(picks, dim=1)
    return torch.where((lengths > 0)[:, None], features, torch.zeros_like(features))


def _flip_within(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """[batch, width] positions that reverse each row's first ``length`` entries and keep its pads in place."""
    position = torch.arange(width, device=lengths.device)[None, :]
    return torch.where(position < lengths[:, None], lengths[:, None] - 1 - position, position)


def _where(condition: torch.Tensor, new: State, old: State) -> State:
    if isinstance(new, tuple):
        assert isinstance(old, tuple)  # one cell made both
        h, c = (torch.where(condition, n, o) for n, o in zip(new, old, strict=True))
        return h, c
    assert isinstance(old, torch.Tensor)
    return torch.where(condition, new, old)


def initialize(model: RNN, recurrent: str = "default", embedding_std: float = 1.0) -> None:
    """Re-draw initial weights where asked; the defaults keep PyTorch's init untouched (the course notebook's).

    ``recurrent="orthogonal"``: each gate's block of every U starts as a rotation (Keras' default
    for its recurrent layers), so the state neither fades nor grows at first. ``embedding_std``:
    embeddings start as N(0, std^2) instead of nn.Embedding's N(0, 1); small values let the
    learned part dominate rare words' noise.
    """
    with torch.no_grad():
        if recurrent == "orthogonal":
            for _, U in model.directions():
                for gate in U.weight.chunk(model.cell.gates, dim=0):
                    nn.init.orthogonal_(gate)
        elif recurrent != "default":
            raise ValueError(f"unknown recurrent init {recurrent!r}")
        if embedding_std != 1.0:
            nn.init.normal_(model.embedding.weight, std=embedding_std)


def loss_function(num_classes: int, reduction: str = "mean", class_weights: torch.Tensor | None = None):
    """BCE on one logit for two classes (the course notebook's loss), cross-entropy on k logits otherwise.

    ``class_weights`` [classes]: row i's loss counts ``class_weights[labels[i]]`` times, as torch's
    weighted CrossEntropyLoss does for k classes; for two classes (one logit) each row's BCE gets its
    class's weight, so that, there too, ``mean`` is sum_i w_i loss_i / sum_i w_i (the scale of the
    unweighted mean), ``sum`` is sum_i w_i loss_i and ``none`` gives the rows' w_i loss_i.
    """
    if num_classes == 2 and class_weights is None:
        bce = nn.BCEWithLogitsLoss(reduction=reduction)
        return lambda logits, labels: bce(logits, labels.to(logits.dtype))
    if num_classes == 2:

        def weighted_bce(logits, labels):
            weights = class_weights[labels].to(logits.dtype)
            losses = weights * nn.functional.binary_cross_entropy_with_logits(
                logits, labels.to(logits.dtype), reduction="none"
            )
            if reduction == "none":
                return losses
            return losses.sum() if reduction == "sum" else losses.sum() / weights.sum()

        return weighted_bce
    return nn.CrossEntropyLoss(weight=class_weights, reduction=reduction)


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities [batch, classes] from the model's logits."""
    if logits.dim() == 1:
        positive = torch.sigmoid(logits)
        return torch.stack([1 - positive, positive], dim=1)
    return torch.softmax(logits, dim=1)


def predicted_labels(logits: torch.Tensor) -> torch.Tensor:
    return (logits > 0).long() if logits.dim() == 1 else logits.argmax(dim=1)
