"""The model: the course notebook's RNN by default (the notebook this project began from: docs/model.md),
with other cells, a reverse direction, readouts and dropout as options.

Read textrnn/model/classifier.py top to bottom; the cells are in textrnn/model/cells.py.
"""

from textrnn.model.cells import CELLS, Cell
from textrnn.model.checkpoint import CHECKPOINT_FORMAT, Checkpoint, load_checkpoint, save_checkpoint
from textrnn.model.classifier import (
    READOUTS,
    RNN,
    ModelConfig,
    initialize,
    loss_function,
    predicted_labels,
    probabilities,
)

__all__ = [
    "CELLS",
    "CHECKPOINT_FORMAT",
    "Cell",
    "Checkpoint",
    "READOUTS",
    "RNN",
    "ModelConfig",
    "initialize",
    "load_checkpoint",
    "loss_function",
    "predicted_labels",
    "probabilities",
    "save_checkpoint",
]
