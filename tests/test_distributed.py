"""DDP: two gloo processes train the same weights as one process (same global batch and seed)."""
from __future__ import annotations

import sys

import pytest
import torch
import yaml

from conftest import make_dataset_dir, make_project, run

STAGES = ["download", "split", "build_vocab", "vectorize"]


def _train(project, nproc: int) -> dict:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["nproc"] = nproc
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run([sys.executable, "stages/train.py"], project)
    assert f"x{nproc}," in result.stderr  # "train: N reviews on cpu xN, ..."
    return torch.load(project / "models" / "model.pt", weights_only=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp")
    dataset = make_dataset_dir(base / "dataset", n_train=400, n_test=40)
    project = make_project(base / "project", dataset, {"train": {"epochs": 1, "batch_size": 16}}, git=False)
    for stage in STAGES:
        run([sys.executable, f"stages/{stage}.py"], project)
    return project


def test_two_gloo_processes_match_one_process(project):
    single = _train(project, 1)
    double = _train(project, 2)
    assert single["metadata"]["world_size"] == 1 and double["metadata"]["world_size"] == 2
    first, second = single["state_dict"], double["state_dict"]
    for name in first:
        torch.testing.assert_close(second[name], first[name], atol=1e-4, rtol=1e-3, msg=name)
    # Rank 0 alone logs: one row per epoch, not one per rank.
    rows = (project / "plots/training/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert len(rows) == 2  # header + epoch 1


def test_a_last_batch_smaller_than_the_world_leaves_one_rank_empty_handed(project):
    """320 train rows in batches of 29: the last batch has 1 row, so rank 1 gets none of it."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["batch_size"] = 29
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    first, second = _train(project, 1)["state_dict"], _train(project, 2)["state_dict"]
    for name in first:
        torch.testing.assert_close(second[name], first[name], atol=1e-4, rtol=1e-3, msg=name)
    params["train"]["batch_size"] = 16
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_one_epoch_moves_the_weights(project):
    """Guards the test above: equal weights must come from training, not from an untouched init."""
    trained = _train(project, 1)["state_dict"]
    torch.manual_seed(42)
    from textrnn.model import RNN, ModelConfig

    config = trained["U.weight"].shape[0]
    initial = RNN(ModelConfig(trained["embedding.weight"].shape[0], trained["embedding.weight"].shape[1], config))
    moved = (trained["U.weight"] - initial.U.weight.detach()).abs().max().item()
    assert moved > 1e-3
