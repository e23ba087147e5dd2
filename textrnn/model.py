"""The notebook's RNN, written by hand: h_t = tanh(W x_t + U h_{t-1}), logits = V h_T."""
from __future__ import annotations

import pickle
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from textrnn import accel
from textrnn.errors import UserError
from textrnn.io import atomic_path

CHECKPOINT_FORMAT = "textrnn-checkpoint-v1"


@dataclass(frozen=True)
class ModelConfig:
    vocabulary_size: int
    embedding_size: int
    hidden_size: int
    num_classes: int = 2
    max_tokens: Optional[int] = None  # reviews are cut to their last max_tokens tokens


class RNN(nn.Module):
    """A simple RNN classifier; two classes use one logit (BCE), k > 2 classes use k (cross-entropy)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocabulary_size, config.embedding_size)
        self.W = nn.Linear(config.embedding_size, config.hidden_size)
        self.U = nn.Linear(config.hidden_size, config.hidden_size)
        self.V = nn.Linear(config.hidden_size, 1 if config.num_classes == 2 else config.num_classes)
        self.activation = nn.Tanh()

    def init_hidden(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, self.U.in_features, device=self.U.weight.device, dtype=self.U.weight.dtype)

    def forward(self, x: torch.Tensor, hidden: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """One time step, as in the notebook: token ids [batch] -> (logits, new hidden)."""
        hidden = self.activation(self.W(self.embedding(x)) + self.U(hidden))
        return self.V(hidden), hidden

    def forward_loop(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The readable reference: one Python step per token over right-padded ``tokens`` [batch, time].

        Each review's state stops changing after its last real token, so the pads that follow
        it cannot touch it.
        """
        hidden = self.init_hidden(tokens.shape[0])
        for t in range(tokens.shape[1]):
            _, stepped = self(tokens[:, t], hidden)
            hidden = torch.where((t < lengths)[:, None], stepped, hidden)
        return self._output(hidden)

    def forward_sequence(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The same recurrence in one fused call on W and U's weights: cuDNN on GPU, on CPU the
        hand-written kernel of textrnn.accel (ATen's loop where that kernel is not available).

        The kernel runs every row to the batch's longest length; each review's state is read at
        its own last real token, so the right pads after it never count.
        """
        batch = tokens.shape[0]
        h0 = self.init_hidden(batch)
        embedded = self.embedding(tokens)
        if accel.applies(embedded, self.U.in_features):
            projected = nn.functional.linear(embedded, self.W.weight, self.W.bias + self.U.bias)
            states = accel.rnn_tanh(projected, h0, self.U.weight)
        else:
            weights = [self.W.weight, self.U.weight, self.W.bias, self.U.bias]
            with warnings.catch_warnings():
                # cuDNN copies W and U into one flat buffer per call; at these sizes that is cheap.
                warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
                states, _ = torch.rnn_tanh(embedded, h0[None], weights, True, 1, 0.0, self.training, False, True)
        last = states[torch.arange(batch, device=tokens.device), (lengths - 1).clamp(min=0)]
        # An empty review keeps the initial state, as the step loop does.
        last = torch.where((lengths > 0)[:, None], last, h0)
        return self._output(last)

    def _output(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.V(hidden)
        return logits.squeeze(-1) if self.config.num_classes == 2 else logits


def initialize(model: RNN, recurrent: str = "default", embedding_std: float = 1.0) -> None:
    """Re-draw initial weights where asked; the defaults keep PyTorch's (the notebook's) init untouched.

    ``recurrent="orthogonal"``: U starts as a rotation (Keras' SimpleRNN default), so the state
    neither fades nor grows at first. ``embedding_std``: embeddings start as N(0, std^2) instead
    of nn.Embedding's N(0, 1); small values let the learned part dominate rare words' noise.
    """
    with torch.no_grad():
        if recurrent == "orthogonal":
            nn.init.orthogonal_(model.U.weight)
        elif recurrent != "default":
            raise ValueError(f"unknown recurrent init {recurrent!r}")
        if embedding_std != 1.0:
            nn.init.normal_(model.embedding.weight, std=embedding_std)


def loss_function(num_classes: int, reduction: str = "mean"):
    """BCE on one logit for two classes (the notebook's), cross-entropy on k logits otherwise."""
    if num_classes == 2:
        bce = nn.BCEWithLogitsLoss(reduction=reduction)
        return lambda logits, labels: bce(logits, labels.to(logits.dtype))
    return nn.CrossEntropyLoss(reduction=reduction)


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities [batch, classes] from the model's logits."""
    if logits.dim() == 1:
        positive = torch.sigmoid(logits)
        return torch.stack([1 - positive, positive], dim=1)
    return torch.softmax(logits, dim=1)


def predicted_labels(logits: torch.Tensor) -> torch.Tensor:
    return (logits > 0).long() if logits.dim() == 1 else logits.argmax(dim=1)


def save_checkpoint(path: Path, model: RNN, state_dict: Dict[str, torch.Tensor], label_names: List[str],
                    metadata: Dict[str, object]) -> None:
    """Write the weights with the sizes and labels needed to rebuild the model, atomically."""
    for name, tensor in state_dict.items():
        if not torch.isfinite(tensor).all():
            raise RuntimeError(f"refusing to save a checkpoint with non-finite weights in {name}")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": asdict(model.config),
        "label_names": list(label_names),
        "metadata": dict(metadata),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path, map_location: str = "cpu") -> Tuple[RNN, List[str], Dict[str, object]]:
    """Rebuild the model from ``path`` (weights_only: nothing in the file is executed)."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: checkpoint not found; train one with `dvc repro train`") from None
    except pickle.UnpicklingError as error:
        if "unsupported global" not in str(error).lower():  # a foreign object, not mere garbage
            raise UserError(f"{path}: corrupt or truncated checkpoint (not a torch file); "
                            f"retrain with `dvc repro -f train`") from None
        # torch's own message advises weights_only=False, which would run the file's code: never relay it.
        raise UserError(f"{path}: refused: it holds Python objects other than tensors and plain data, which "
                        f"could run code; use a checkpoint made by `dvc repro train`") from None
    except Exception as error:
        raise UserError(f"{path}: corrupt or truncated checkpoint ({type(error).__name__}); "
                        f"retrain with `dvc repro -f train`") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: not a textrnn checkpoint (no '{CHECKPOINT_FORMAT}' format tag)")
    try:
        model = RNN(ModelConfig(**payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (TypeError, KeyError, RuntimeError) as error:
        raise UserError(f"{path}: checkpoint does not match the model ({str(error).splitlines()[0]})") from None
    model.eval()
    return model, list(payload["label_names"]), dict(payload.get("metadata", {}))
