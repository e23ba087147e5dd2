"""DDP: two gloo processes train the same weights as one process (same global batch and seed)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import make_dataset_dir, make_project, run

pytestmark = pytest.mark.slow  # end to end: the train stage under torchrun

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
    project = make_project(
        base / "project", dataset, {"train": {"epochs": 1, "batch_size": 16, "lr": 0.001}}, git=False
    )
    for stage in STAGES:
        run([sys.executable, f"stages/{stage}.py"], project)
    return project


# At the notebook's lr the two runs agree to ~1e-6. At lr 0.01, RMSprop's first steps move every
# weight by about lr * sign(gradient), so gradients at float-noise level can flip a step.
def test_two_gloo_processes_match_one_process(project):
    single = _train(project, 1)
    double = _train(project, 2)
    assert single["metadata"]["world_size"] == 1 and double["metadata"]["world_size"] == 2
    first, second = single["state_dict"], double["state_dict"]
    for name in first:
        torch.testing.assert_close(second[name], first[name], atol=1e-5, rtol=0, msg=name)
    # Rank 0 alone logs: one row per epoch, not one per rank.
    rows = (project / "plots/training/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert len(rows) == 2  # header + epoch 1


def test_a_last_batch_smaller_than_the_world_leaves_one_rank_empty_handed(project):
    """320 train rows in batches of 29: the last batch has 1 row, so rank 1 gets none of it."""
    original = (project / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params["train"]["batch_size"] = 29
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        first, second = _train(project, 1)["state_dict"], _train(project, 2)["state_dict"]
    finally:
        (project / "params.yaml").write_text(original)
    for name in first:
        torch.testing.assert_close(second[name], first[name], atol=1e-5, rtol=0, msg=name)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_torchrun_agents_as_two_nodes_match_one_process(project, tmp_path):
    """Multi-node as on a cluster: one torchrun agent per node, met through c10d rendezvous (here both on localhost)."""
    single = _train(project, 1)["state_dict"]
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
               "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{free_port()}", "--rdzv_id=two-nodes",
               "stages/train.py"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    logs = [tmp_path / f"node{node}.txt" for node in range(2)]
    agents = []
    for log in logs:
        with open(log, "w") as output:
            agents.append(subprocess.Popen(command, cwd=project, env=env, stdout=output, stderr=subprocess.STDOUT))
    try:
        codes = [agent.wait(timeout=300) for agent in agents]
    finally:
        for agent in agents:
            agent.kill()
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]
    double = torch.load(project / "models" / "model.pt", weights_only=True)
    assert double["metadata"]["world_size"] == 2
    for name in single:
        torch.testing.assert_close(double["state_dict"][name], single[name], atol=1e-5, rtol=0, msg=name)


def test_one_epoch_moves_the_weights(project):
    """Guards the tests above: equal weights must come from training, not from an untouched init."""
    from textrnn.model import RNN, ModelConfig, initialize

    trained = _train(project, 1)
    train = yaml.safe_load((project / "params.yaml").read_text())["train"]
    torch.manual_seed(train["seed"])  # the initial model exactly as stages/train.py builds it
    initial = RNN(ModelConfig(**trained["config"]))
    initialize(initial, train["recurrent_init"], train["embedding_init_std"])
    moved = (trained["state_dict"]["U.weight"] - initial.U.weight.detach()).abs().max().item()
    assert 1e-3 < moved < 0.1  # trained for one small epoch: moved, but from this very start


def test_an_error_under_two_processes_is_one_line(project):
    vectors = project / "data/vectors/valid/ids.npy"
    intact = vectors.read_bytes()
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["nproc"] = 2
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    vectors.write_bytes(intact[:100])  # inside the .npy header
    try:
        result = run([sys.executable, "stages/train.py"], project, check=False)
    finally:
        vectors.write_bytes(intact)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: data/vectors/valid/ids.npy: corrupt or not a textrnn vector file (ValueError); "
        "rerun `dvc repro -f vectorize`"
    ]


def processes_in(directory: Path) -> list:
    """The processes whose working folder is ``directory`` (the stage, torchrun and the ranks all run there)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")) == directory:
                found.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except OSError:  # gone meanwhile, or not ours to read
            pass
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds leftover processes through /proc")
def test_ctrl_c_under_two_processes_is_one_line_and_leaves_no_process_behind(project, tmp_path):
    """Ctrl-C in a terminal sends SIGINT to the foreground process group: the stage and what it started there."""
    original = (project / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params["train"].update(nproc=2, epochs=100000)  # far more than the test waits for
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    log = tmp_path / "stderr.txt"  # a file, not a pipe: a process left behind cannot hold the test up
    try:
        with open(log, "w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "stages/train.py"],
                cwd=project,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while "\nepoch 2/" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)  # until the ranks train: rank 0 has logged two epochs
        assert "\nepoch 2/100000" in log.read_text(), log.read_text()
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
        deadline = time.monotonic() + 10
        while processes_in(project.resolve()) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = processes_in(project.resolve())
    finally:
        for pid, _ in processes_in(project.resolve()):  # what this test started and left running
            os.kill(pid, signal.SIGKILL)
        (project / "params.yaml").write_text(original)
    lines = log.read_text().splitlines()
    assert process.returncode == 130, lines
    assert "Traceback" not in log.read_text()
    line = "interrupted: stopped before finishing; the previous outputs are intact and no temporary file is left"
    assert [x for x in lines if not x.startswith(("train: ", "epoch "))] == [line]  # once, not once per process
    assert left == []
