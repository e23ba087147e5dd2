"""textrnn seeds / summary / preset without DVC running: `dvc exp show --json` documents, a fake `dvc` and git.

tests/exp_show.json was built from a document that `dvc exp show --json` printed for a tiny project:
its workspace and commit entries as printed (deps, outs and meta trimmed), and experiments made from
its entries, one per state DVC reports: two seeds that ended well, a failed, a queued and a running
one (these three with their baseline commit's metrics, as DVC gives them), and one run in the
workspace at another hidden_size (no executor). Their accuracies were set by hand to round figures.
"""

import json
from pathlib import Path

import pytest

from textrnn import cli
from textrnn.core.errors import UserError
from textrnn.core.params import read_params
from textrnn.project import experiments, presets
from textrnn.project.experiments import (
    finished,
    format_summary,
    group_by_params,
    queue_seeds,
    runs_from_exp_show,
    shared_outputs_missing,
    stage_deps,
)

DOCUMENT = json.loads((Path(__file__).parent / "exp_show.json").read_text())


def test_only_finished_runs_count_each_once():
    """Queued, running and failed experiments carry the metrics of their baseline commit: counted as runs,
    they made `runs 4` of three seeds. They are left out, and a rev listed twice counts once."""
    runs = runs_from_exp_show(DOCUMENT + [DOCUMENT[1]])  # the commit twice, as `exp show -A` can list it
    assert [(run.name, run.state) for run in runs] == [
        ("seed1-a1b2", "success"),
        ("seed2-a1b2", "success"),
        ("seed3-a1b2", "failed"),
        ("seed4-a1b2", "queued"),
        ("seed5-a1b2", "running"),
        ("wide-run", "done"),
    ]
    commit_metrics = {k: v for k, v in runs[2].metrics.items()}
    assert (
        commit_metrics["metrics.json:test.accuracy"]
        == DOCUMENT[1]["data"]["metrics"]["metrics/metrics.json"]["data"]["test"]["accuracy"]
    )
    assert [run.name for run in finished(runs)] == ["seed1-a1b2", "seed2-a1b2", "wide-run"]


def test_the_summary_fits_80_columns_with_the_baseline_once():
    groups = group_by_params(finished(runs_from_exp_show(DOCUMENT)))
    assert format_summary(groups) == (
        "group     runs  test           valid          train\n"
        "1         2     0.650 ± 0.071  0.600 ± 0.071  0.700 ± 0.071\n"
        "2         1     0.800          0.750          0.850\n"
        "baseline  -     0.900          0.850          1.000\n"
        "\n"
        "1: train.hidden_size=16\n"
        "2: train.hidden_size=32"
    )


def test_distinct_baselines_get_a_row_each_naming_their_groups():
    runs = finished(runs_from_exp_show(DOCUMENT))
    runs[2].metrics["baseline.json:test.accuracy"] = 0.5  # wide-run: as if on other data
    table = format_summary(group_by_params(runs)).splitlines()
    assert table[3:5] == [
        "baseline 1  -     0.900          0.850          1.000",
        "baseline 2  -     0.500          0.850          1.000",
    ]


def test_metric_and_all_metrics_pick_the_columns():
    groups = group_by_params(finished(runs_from_exp_show(DOCUMENT)))
    assert format_summary(groups, ["metrics.json:test.loss", "baseline.json:C"]).splitlines()[:3] == [
        "group  runs  metrics.json:test.loss  baseline.json:C",
        "1      2     0.685                   1.000",
        "2      1     0.685                   1.000",
    ]
    header = format_summary(groups, all_metrics=True).splitlines()[0].split()
    assert header[:3] == ["group", "runs", "baseline.json:C"] and len(header) == 2 + 14
    assert format_summary([]) == (
        "no finished experiments with metrics (run some: `textrnn seeds`, or `dvc exp run --queue`)"
    )


def test_a_metric_that_no_run_has_is_named_under_the_table():
    groups = group_by_params(finished(runs_from_exp_show(DOCUMENT)))
    lines = format_summary(groups, ["metrics.json:test.acc", "metrics.json:test.loss"]).splitlines()
    assert lines[:3] == [
        "group  runs  metrics.json:test.acc  metrics.json:test.loss",
        "1      2     -                      0.685",
        "2      1     -                      0.685",
    ]
    assert lines[-1] == (
        "note: no run has metrics.json:test.acc (FILE:KEY as `textrnn summary --all-metrics` lists them, "
        "e.g. metrics.json:test.accuracy)"
    )


def test_long_params_wrap_under_the_table():
    runs = finished(runs_from_exp_show(DOCUMENT))
    runs[2].params["download.dataset"] = "/home/someone/data/" + "x" * 70
    lines = format_summary(group_by_params(runs)).splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[5:] == [
        "1: download.dataset=datasets/mine, train.hidden_size=16",
        "2: download.dataset=/home/someone/data/" + "x" * 41,
        "   " + "x" * 29 + ", train.hidden_size=32",
    ]


class FakeDvc:
    """`dvc` as textrnn calls it: records each command."""

    def __init__(self):
        self.calls = []

    def __call__(self, *args, capture=False):
        self.calls.append(args)
        return ""


BASELINE = "b" * 40


class FakeGit:
    """git as the queue leaves it, one state per poll: refs of the experiments that succeeded, the failed
    stash's reflog, the queued stash's reflog; `git show COMMIT:PATH` from the experiments' files."""

    def __init__(self, states):
        self.states = list(states)  # (succeeded {name: test accuracy}, failed names, queued names)

    def __call__(self, *args):
        succeeded, failed, queued = self.states[0]
        if args[0] == "for-each-ref":
            return "".join(f"{name:0<40} refs/exps/bb/{BASELINE[2:]}/{name}\n" for name in succeeded)
        if args[0] == "log":
            names = failed if args[-1] == "refs/exps/celery/failed" else queued
            return "".join(f"commit: dvc-exp:{name:0<40}:{BASELINE}:{name}\n" for name in names)
        assert args[0] == "show"
        commit, path = args[1].split(":")
        if path == "dvc.yaml":
            return "stages:\n  evaluate:\n    metrics:\n      - metrics/metrics.json:\n          cache: false\n"
        name = commit.rstrip("0")
        seed = int(name[4 : name.index("-")])
        if path == "params.yaml":
            return f"train:\n  seed: {seed}\n  cell: gru\n"
        split = {"accuracy": succeeded[name], "loss": 0.5}
        return json.dumps({"train": split, "valid": split, "test": split})

    def poll(self):
        if len(self.states) > 1:
            self.states.pop(0)


def seeds_run(git_states, monkeypatch, alive=True, token="beef"):
    fake_git = FakeGit(git_states)
    fake_dvc = FakeDvc()
    said, now = [], iter(float(t) for t in range(0, 1000, 20))
    result = queue_seeds(
        [1, 2],
        ["-S", "train.cell=gru"],
        4,
        run_dvc=fake_dvc,
        run_git=fake_git,
        alive=lambda: alive,
        say=said.append,
        clock=lambda: next(now),
        sleep=lambda _: fake_git.poll(),
        token=lambda: token,
    )
    return result, fake_dvc.calls, said


def test_seeds_follow_only_their_own_experiments(tmp_path, monkeypatch):
    """An old failed experiment decides nothing; a line as each of this run's ends, read from git's refs."""
    monkeypatch.chdir(tmp_path)  # no dvc.lock: nothing to prepare
    old = {"old-failure"}
    result, calls, said = seeds_run(
        [
            ({}, old, set()),
            ({}, old, {"seed1-beef", "seed2-beef"}),
            ({"seed1-beef": 0.75}, old, {"seed2-beef"}),
            ({"seed1-beef": 0.75}, old | {"seed2-beef"}, set()),
        ],
        monkeypatch,
    )
    assert calls == [
        ("exp", "run", "--queue", "--name", "seed1-beef", "-S", "train.cell=gru", "-S", "train.seed=1"),
        ("exp", "run", "--queue", "--name", "seed2-beef", "-S", "train.cell=gru", "-S", "train.seed=2"),
        ("queue", "start", "-j", "2"),  # no more workers than experiments
    ]
    assert said == [
        "seeds: queued seed1-beef, seed2-beef with 2 workers; a line as each ends (`dvc queue logs NAME -f` "
        "follows one)",
        "seed 1 (seed1-beef) after 0:20: test 0.750  valid 0.750  train 0.750",
        "seed 2 (seed2-beef) after 0:40: failed; `dvc queue logs seed2-beef` shows why",
    ]
    assert result.failed == ["seed2-beef"]
    [run] = result.runs
    assert (run.name, run.params, run.metrics["metrics.json:test.accuracy"]) == (
        "seed1-beef",
        {"train.seed": 1, "train.cell": "gru"},
        0.75,
    )


def test_a_stopped_worker_is_started_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    queued = ({}, set(), {"seed1-beef", "seed2-beef"})
    done = ({"seed1-beef": 0.5, "seed2-beef": 0.5}, set(), set())
    result, calls, said = seeds_run([({}, set(), set()), queued, queued, queued, done], monkeypatch, alive=False)
    assert calls[2:] == [("queue", "start", "-j", "2"), ("queue", "start", "-j", "2")]
    assert said[1] == "seeds: the queue has no worker left (see .dvc/tmp/exps/celery/*.out); starting it again"
    assert result.failed == [] and len(result.runs) == 2


def test_an_experiment_removed_from_the_queue_ends_the_wait(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    queued = ({"seed1-beef": 0.5}, set(), {"seed2-beef"})
    removed = ({"seed1-beef": 0.5}, set(), set())
    result, calls, said = seeds_run([({}, set(), set()), queued, removed], monkeypatch, alive=False)
    assert said[2] == (
        "seed 2 (seed2-beef) after 0:40: no longer queued, and no worker runs it (`dvc queue remove`, or a "
        "worker killed?)"
    )
    assert calls[2:] == [("queue", "start", "-j", "2")] and result.failed == ["seed2-beef"]


def test_ctrl_c_says_the_queue_goes_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    said = []

    def interrupt(_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        queue_seeds(
            [1, 2],
            [],
            1,
            run_dvc=FakeDvc(),
            run_git=FakeGit([({}, set(), set())]),
            alive=lambda: True,
            say=said.append,
            sleep=interrupt,
            token=lambda: "beef",
        )
    assert said[-1] == (
        "seeds: the queue goes on without textrnn (seed1-beef, seed2-beef not ended): `dvc queue kill NAME` "
        "stops one, `textrnn summary` shows the finished"
    )


def test_a_seeds_name_is_never_one_already_taken(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tokens = iter(["0001", "0002"])
    fake_git = FakeGit([({"seed1-0001": 0.5}, set(), set()), ({"seed1-0001": 0.5, "seed1-0002": 0.6}, set(), set())])
    result = queue_seeds(
        [1],
        [],
        1,
        run_dvc=FakeDvc(),
        run_git=fake_git,
        alive=lambda: True,
        say=lambda _: None,
        sleep=lambda _: fake_git.poll(),
        token=lambda: next(tokens),
    )
    assert [run.name for run in result.runs] == ["seed1-0002"] and result.failed == []


def test_the_cli_exits_0_with_the_summary_of_its_runs_despite_an_old_failure(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    old = {"old-failure"}
    fake_git = FakeGit([({}, old, set()), ({"seed1-cafe": 0.75, "seed2-cafe": 0.85}, old, set())])
    monkeypatch.setattr(experiments, "git", fake_git)
    monkeypatch.setattr(experiments, "dvc", FakeDvc())
    monkeypatch.setattr(experiments, "workers_alive", lambda: True)
    monkeypatch.setattr(experiments.secrets, "token_hex", lambda _: "cafe")
    monkeypatch.setattr(experiments.time, "sleep", lambda _: fake_git.poll())
    cli.main(["seeds", "--seeds", "1,2"])
    assert capsys.readouterr().out == (
        "group  runs  test           valid          train\n1      2     0.800 ± 0.071  0.800 ± 0.071  0.800 ± 0.071\n"
    )


def test_the_cli_exits_1_naming_the_failed_runs_after_the_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    fake_git = FakeGit([({}, set(), set()), ({"seed1-cafe": 0.75}, {"seed2-cafe"}, set())])
    monkeypatch.setattr(experiments, "git", fake_git)
    monkeypatch.setattr(experiments, "dvc", FakeDvc())
    monkeypatch.setattr(experiments, "workers_alive", lambda: True)
    monkeypatch.setattr(experiments.secrets, "token_hex", lambda _: "cafe")
    monkeypatch.setattr(experiments.time, "sleep", lambda _: fake_git.poll())
    with pytest.raises(SystemExit) as exit_:
        cli.main(["seeds", "--seeds", "1,2"])
    assert exit_.value.code == 1
    out, err = capsys.readouterr()
    assert out == "group  runs  test   valid  train\n1      1     0.750  0.750  0.750\n"
    assert err.splitlines()[-1] == "error: 1 of 2 experiments failed (seed2-cafe); `dvc queue logs NAME` shows why"


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["seeds", "--seeds", "1,2", "-S", "train.seed=5"],
            "error: -S train.seed=5: textrnn seeds sets train.seed itself; give the seeds with --seeds instead",
        ),
        (
            ["seeds", "-S", "params.yaml:train.seed=5"],
            "error: -S params.yaml:train.seed=5: textrnn seeds sets "
            "train.seed itself; give the seeds with --seeds instead",
        ),
        (
            ["seeds", "-S", "++train.seed=5"],  # Hydra's force-add: sets the key all the same
            "error: -S ++train.seed=5: textrnn seeds sets train.seed itself; give the seeds with --seeds instead",
        ),
        (
            ["seeds", "-S", "train.cell"],
            "error: -S train.cell: expected SECTION.KEY=VALUE, e.g. -S train.hidden_size=128",
        ),
    ],
)
def test_seeds_refuse_a_seed_among_the_params_before_calling_dvc(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(experiments, "dvc", None)  # any call would fail
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 1
    assert capsys.readouterr().err == message + "\n"


def test_a_preset_that_sets_the_seed_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text((Path(__file__).parents[1] / "params.yaml").read_text())
    Path("presets").mkdir()
    Path("presets/seeded.yaml").write_text("train:\n  seed: 4\n")
    with pytest.raises(SystemExit):
        cli.main(["seeds", "--preset", "seeded"])
    assert capsys.readouterr().err == (
        "error: preset seeded: sets train.seed, which textrnn seeds sets itself; remove it from the preset, "
        "or give the seeds with --seeds\n"
    )


@pytest.mark.parametrize("jobs", ["0", "-1", "two"])
def test_seeds_refuse_fewer_than_one_worker(jobs, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["seeds", "-j", jobs])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"textrnn seeds: error: argument -j/--jobs: must be a whole number >= 1, got '{jobs}'"
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["seeds", "-j", "1025"],
            "argument -j/--jobs: must be at most 1024 (the bound of every thread count), got '1025'",
        ),
        (
            ["seeds", "--seeds", "1,4294967296"],
            "argument --seeds: distinct integers in [0, 4294967295] (train.seed's range), got '1,4294967296'",
        ),
    ],
)
def test_seeds_refuse_what_no_run_could_take(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"textrnn seeds: error: {message}"


LOCK = {
    "schema": "2.0",
    "stages": {
        "split": {"deps": [{"path": "data/raw"}], "outs": [{"path": "data/split", "md5": "ab" + "1" * 30 + ".dir"}]},
        "build_vocab": {
            "deps": [{"path": "data/split/train.parquet"}],
            "outs": [{"path": "data/vocab.txt", "md5": "cd" + "2" * 30}],
        },
        "train": {
            "deps": [{"path": "data/vocab.txt"}],
            "outs": [{"path": "plots/training", "md5": "ef" + "3" * 30 + ".dir"}],
        },
    },
}
# `dvc status --with-deps --json split` in a fresh clone (dvc.lock committed, no cache)
FRESH_STATUS = {
    "split": [{"changed deps": {"data/raw": "deleted"}}, {"changed outs": {"data/split": "not in cache"}}],
    "download": [{"changed outs": {"data/raw": "not in cache"}}],
}
LOCK["stages"]["download"] = {
    "deps": [{"path": "datasets/mine"}],
    "outs": [{"path": "data/raw", "md5": "9" * 32 + ".dir"}],
}


def test_the_outputs_queued_experiments_look_into_are_found_missing(tmp_path):
    """Directory outputs holding another stage's dependency (data/split holds build_vocab's); not plots/training."""
    assert shared_outputs_missing(LOCK, tmp_path) == {"split": ["data/split"]}
    # a lock of download and split alone: build_vocab's deps come from dvc.yaml
    lock = {"stages": {name: LOCK["stages"][name] for name in ("download", "split")}}
    assert shared_outputs_missing(lock, tmp_path) == {}
    pipeline = {"stages": {"build_vocab": {"deps": ["stages/build_vocab.py", "data/split/train.parquet"]}}}
    assert shared_outputs_missing(lock, tmp_path, stage_deps(pipeline)) == {"split": ["data/split"]}
    listing = tmp_path / "files/md5/ab" / ("1" * 30 + ".dir")
    listing.parent.mkdir(parents=True)
    listing.write_text("[]")
    assert shared_outputs_missing(LOCK, tmp_path) == {}


def lock_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from ruamel.yaml import YAML

    with open("dvc.lock", "w") as handle:
        YAML(typ="safe").dump(LOCK, handle)


def test_a_fresh_clone_reproduces_the_shared_stages_once(tmp_path, monkeypatch):
    lock_project(tmp_path, monkeypatch)
    calls, said = [], []

    def fake(*args, capture=False):
        calls.append(args)
        return {"cache": str(tmp_path / "cache"), "status": json.dumps(FRESH_STATUS)}.get(args[0], "")

    assert experiments.prepare_shared_outputs(fake, said.append) == ["split"]
    assert calls == [("cache", "dir"), ("status", "--with-deps", "--json", "split"), ("repro", "split")]
    assert said == [
        "seeds: dvc.lock records data/split, which queued experiments read and no local cache holds "
        "(a fresh clone); reproducing them once first: dvc repro split"
    ]


def test_a_workspace_that_no_longer_matches_its_lock_is_not_reproduced(tmp_path, monkeypatch):
    lock_project(tmp_path, monkeypatch)
    changed = dict(FRESH_STATUS, download=[{"changed deps": {"params.yaml": {"download.dataset": "modified"}}}])

    def fake(*args, capture=False):
        assert args[0] != "repro"
        return {"cache": str(tmp_path / "cache"), "status": json.dumps(changed)}.get(args[0], "")

    with pytest.raises(UserError) as error:
        experiments.prepare_shared_outputs(fake, lambda _: None)
    assert str(error.value) == (
        "dvc.lock records data/split, which queued experiments read and no local cache holds, and the "
        "workspace no longer matches dvc.lock (`dvc status`); run `dvc repro split` (or `dvc pull`) first, "
        "then textrnn seeds"
    )


@pytest.mark.parametrize(
    "value, word",
    [
        ([1, 4, 16], "[1,4,16]"),
        ({"a": 1, "b": [True, None]}, "{a:1,b:[true,null]}"),
        (0.001, "0.001"),
        (1e-05, "1e-05"),
        (None, "null"),
        (False, "false"),
        ("gru", "gru"),
        ("yes", "yes"),
        ("true", '"true"'),
        ("nan", '"nan"'),
        ("010", '"010"'),
        ("café", '"café"'),
        ("~/data", '"~/data"'),
        ("a,b", '"a,b"'),
        ("f(x)", '"f(x)"'),
        ("@data", '"@data"'),
        ("${x}", '"\\${x}"'),
        ('a"b\\', '"a\\"b\\\\"'),
        (["a", "é"], '[a,"é"]'),
    ],
)
def test_a_preset_value_is_one_shell_word_that_dvc_reads_back(value, word, tmp_path):
    from dvc.utils.hydra import apply_overrides

    options = presets.as_set_options({"x": {"k": value}})
    assert options == ["-S", f"x.k={word}"]
    params = tmp_path / "params.yaml"
    params.write_text("x:\n  k: 0\n")
    apply_overrides(params, [options[1]])  # what `dvc exp run -S` does with the word
    assert read_params(params)["x"]["k"] == value


def test_a_value_with_whitespace_is_refused():
    with pytest.raises(UserError) as error:
        presets.as_set_options({"x": {"k": ["a b"]}})
    assert str(error.value) == (
        "the preset value ['a b'] holds whitespace, which a shell splits in `$(...)`; use `textrnn preset "
        "NAME --run` (or --queue, or --apply) instead"
    )


def preset_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text((Path(__file__).parents[1] / "params.yaml").read_text())
    Path("presets").mkdir()
    Path("presets/wide.yaml").write_text("baseline:\n  C: [1, 4]\ntrain:\n  hidden_size: 128\n")


def test_preset_prints_words_and_warns_of_shell_patterns(tmp_path, monkeypatch, capsys):
    preset_project(tmp_path, monkeypatch)
    cli.main(["preset", "wide"])
    out, err = capsys.readouterr()
    assert out == "-S baseline.C=[1,4] -S train.hidden_size=128\n"
    assert err == (
        "note: baseline.C=[1,4] holds a shell pattern character ([, * or ?); unquoted in `$(...)` a shell may "
        "expand it to file names: `textrnn preset wide --run` (or --queue) passes it intact\n"
    )


@pytest.mark.parametrize("flag, queue", [("--run", []), ("--queue", ["--queue"])])
def test_preset_run_and_queue_call_dvc_with_the_words_intact(flag, queue, tmp_path, monkeypatch):
    preset_project(tmp_path, monkeypatch)
    fake = FakeDvc()
    monkeypatch.setattr(experiments, "dvc", fake)
    cli.main(["preset", "wide", flag])
    assert fake.calls == [("exp", "run", *queue, "-S", "baseline.C=[1,4]", "-S", "train.hidden_size=128")]
