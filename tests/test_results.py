"""`textrnn results`: README.md's Results table read, the runs' figures as its cells, and the cells that differ."""

import hashlib
import subprocess
from argparse import Namespace

import pytest
from conftest import ROOT

from textrnn.cli import build_parser
from textrnn.core.errors import UserError
from textrnn.project import experiments, results

README = """# x

## Results

| dataset (train / valid / test rows) | configuration | command | train | valid | test |
|---|---|---|---|---|---|
| IMDB (20,000 / 5,000 carved from train / 25,000) | the notebook (one run, T4 GPU) | — | 0.824 | 0.778 | 0.774 |
| | textrnn at the notebook's defaults | `textrnn seeds` | 0.838 ± 0.031 | 0.775 ± 0.023 | 0.768 ± 0.019 |
| | `presets/recommended.yaml` | `…` | **0.935 ± 0.003** | **0.878 ± 0.002** | **0.868 ± 0.005** |
| | baseline stage (TF-IDF 1-2 grams + LR) | `dvc repro baseline` | 1.000 | 0.909 | 0.904 |
| trec6 (4,361 / 1,091 carved / 500) | defaults | `textrnn seeds` | 0.805 ± 0.005 | 0.714 ± 0.011 | 0.807 ± 0.004 |
| | recommended | the same with `--preset recommended` | **0.950 ± 0.015** | **0.822 ± 0.014** | **0.873 ± 0.003** |
| | baseline stage | | 1.000 | 0.845 | 0.880 |

| what | figure |
|---|---|
| a | b |

## Speed

| what | figure | command | x | y | z |
|---|---|---|---|---|---|
| trec6 defaults | 1 | 2 | 3 | 4 | 5 |
"""

PARSED = {
    ("imdb", "defaults"): ("0.838 ± 0.031", "0.775 ± 0.023", "0.768 ± 0.019"),
    ("imdb", "recommended"): ("0.935 ± 0.003", "0.878 ± 0.002", "0.868 ± 0.005"),
    ("imdb", "baseline"): ("1.000", "0.909", "0.904"),
    ("trec6", "defaults"): ("0.805 ± 0.005", "0.714 ± 0.011", "0.807 ± 0.004"),
    ("trec6", "recommended"): ("0.950 ± 0.015", "0.822 ± 0.014", "0.873 ± 0.003"),
    ("trec6", "baseline"): ("1.000", "0.845", "0.880"),
}

TAG = "results-abc1234-20260101000000"
# trec6's figures at dfd0c6a (textrnn results on the build machine), per seed: train, valid, test accuracy.
ACCURACY = {
    "defaults": [(0.767943, 0.676444, 0.772), (0.810823, 0.72319, 0.816), (0.79867, 0.711274, 0.792)],
    "recommended": [(0.93396, 0.808433, 0.87), (0.96354, 0.836847, 0.874), (0.952075, 0.821265, 0.876)],
}
BASELINE = {
    "enabled": True,
    "C": 16,
    "train": {"accuracy": 1.0},
    "valid": {"accuracy": 0.845096},
    "test": {"accuracy": 0.88},
}


def experiment(name: str, seed: int, accuracy: tuple[float, float, float], baseline: dict | None = BASELINE) -> dict:
    """One experiment as `dvc exp show --json` lists it (the keys runs_from_exp_show reads)."""
    metrics = {
        "metrics/metrics.json": {
            "data": {s: {"accuracy": a, "loss": 0.5} for s, a in zip(("train", "valid", "test"), accuracy, strict=True)}
        }
    }
    if baseline is not None:
        metrics["metrics/baseline.json"] = {"data": baseline}
    params = {"params.yaml": {"data": {"train": {"seed": seed}, "download": {"dataset": "/data/trec6"}}}}
    rev = hashlib.sha1(name.encode()).hexdigest()  # each experiment its own commit, as DVC makes them
    return {"revs": [{"rev": rev, "name": name, "data": {"params": params, "metrics": metrics}}]}


def exp_show_document(tag: str = TAG, baseline: dict | None = BASELINE) -> list:
    runs = [
        experiment(results.experiment_name(tag, "trec6", configuration, seed), seed, accuracy, baseline)
        for configuration, seeds in ACCURACY.items()
        for seed, accuracy in enumerate(seeds, start=1)
    ]
    other = experiment("an-earlier-experiment", 1, (0.1, 0.1, 0.1))  # same params, not this run's: left out
    return [{"rev": "workspace", "experiments": None}, {"rev": "a" * 40, "experiments": [*runs, other]}]


def test_the_readme_table_is_read_cell_by_cell_without_bold_or_the_notebooks_row():
    assert results.parse_readme_table(README) == PARSED


def test_the_projects_readme_has_every_row_results_regenerates():
    table = results.parse_readme_table((ROOT / "README.md").read_text(encoding="utf-8"))
    expected = {(d, c) for d in results.DATASETS for c in (*results.CONFIGURATIONS, "baseline")}
    assert set(table) == expected
    assert all(len(cells) == 3 and all(cell[0].isdigit() for cell in cells) for cells in table.values())


def test_a_readme_without_the_results_section_is_one_line():
    with pytest.raises(UserError, match=r"^README.md has no '## Results' section; run from the project's root$"):
        results.parse_readme_table("# x\n\n## Speed\n")


@pytest.mark.parametrize(
    "values, cell",
    [
        ([0.772, 0.816, 0.792], "0.793 ± 0.022"),  # trec6's defaults at dfd0c6a
        ([0.87, 0.874, 0.876], "0.873 ± 0.003"),
        ([0.5, 0.5], "0.500 ± 0.000"),
        ([0.9995], "1.000"),
    ],
)
def test_a_cell_is_the_mean_and_the_sample_std_to_three_decimals(values, cell):
    assert results.format_cell(values) == cell


def test_rows_come_from_this_runs_experiments_by_name_with_the_baseline_once():
    runs = {run.name: run for run in experiments.runs_from_exp_show(exp_show_document())}
    rows = results.rows_from_runs(runs, TAG, [("trec6", "defaults"), ("trec6", "recommended")])
    assert rows == [
        results.Row("trec6", "defaults", ("0.792 ± 0.022", "0.704 ± 0.024", "0.793 ± 0.022")),
        results.Row("trec6", "recommended", ("0.950 ± 0.015", "0.822 ± 0.014", "0.873 ± 0.003")),
        results.Row("trec6", "baseline", ("1.000", "0.845", "0.880")),
    ]
    assert results.format_rows(rows).splitlines() == [
        "| dataset | configuration | train | valid | test |",
        "|---|---|---|---|---|",
        "| trec6 | defaults | 0.792 ± 0.022 | 0.704 ± 0.024 | 0.793 ± 0.022 |",
        "| trec6 | recommended | 0.950 ± 0.015 | 0.822 ± 0.014 | 0.873 ± 0.003 |",
        "| trec6 | baseline | 1.000 | 0.845 | 0.880 |",
    ]
    assert results.differences(rows, PARSED) == [
        "trec6 defaults train: README 0.805 ± 0.005, now 0.792 ± 0.022",
        "trec6 defaults valid: README 0.714 ± 0.011, now 0.704 ± 0.024",
        "trec6 defaults test: README 0.807 ± 0.004, now 0.793 ± 0.022",
    ]
    # only the preset picked: no baseline row (it is read from the defaults' runs)
    assert [r.configuration for r in results.rows_from_runs(runs, TAG, [("trec6", "recommended")])] == ["recommended"]


def test_a_row_the_readme_lacks_is_named():
    row = results.Row("sst2", "defaults", ("0.900 ± 0.010",) * 3)
    assert results.differences([row], PARSED) == ["sst2 defaults: not in README.md's table"]


def test_a_seed_without_metrics_is_one_line_naming_it():
    document = exp_show_document()
    del document[1]["experiments"][1]  # defaults, seed 2
    runs = {run.name: run for run in experiments.runs_from_exp_show(document)}
    with pytest.raises(
        UserError, match=rf"^no metrics for trec6 defaults seed\(s\) 2 of run {TAG} in `dvc exp show`; "
    ):
        results.rows_from_runs(runs, TAG, [("trec6", "defaults")])


def test_a_baseline_that_differs_between_seeds_is_refused():
    document = exp_show_document()
    document[1]["experiments"][0]["revs"][0]["data"]["metrics"]["metrics/baseline.json"]["data"] = {
        **BASELINE,
        "test": {"accuracy": 0.5},
    }
    runs = {run.name: run for run in experiments.runs_from_exp_show(document)}
    with pytest.raises(UserError, match="trec6: the baseline's figures differ between seeds"):
        results.rows_from_runs(runs, TAG, [("trec6", "defaults")])


def test_a_disabled_baseline_gives_no_baseline_row():
    runs = {run.name: run for run in experiments.runs_from_exp_show(exp_show_document(baseline={"enabled": False}))}
    assert [r.configuration for r in results.rows_from_runs(runs, TAG, [("trec6", "defaults")])] == ["defaults"]


def test_rows_are_picked_by_dataset_or_dataset_and_configuration(tmp_path):
    folders = results.parse_folders([f"trec6={tmp_path}"])
    assert folders == {"trec6": str(tmp_path.resolve())}
    assert results.pick(None, folders) == [
        ("imdb", "defaults"),
        ("imdb", "recommended"),
        ("trec6", "defaults"),
        ("trec6", "recommended"),
    ]
    assert results.pick(["trec6"], folders) == [("trec6", "defaults"), ("trec6", "recommended")]
    assert results.pick(["trec6:recommended", "imdb:defaults"], folders) == [
        ("trec6", "recommended"),
        ("imdb", "defaults"),
    ]


@pytest.mark.parametrize(
    "only, dataset, message",
    [
        (["agnews"], [], "--only agnews: unknown dataset 'agnews'; use one of imdb, sst2, trec6"),
        (
            ["trec6:tuned"],
            ["trec6={tmp}"],
            "--only trec6:tuned: unknown configuration; use one of defaults, recommended",
        ),
        (["sst2"], [], "--only sst2: give its folder with --dataset sst2=PATH"),
        (None, ["trec6"], "--dataset trec6: give NAME=PATH with NAME one of sst2, trec6 (IMDB is the default)"),
        (
            None,
            ["imdb={tmp}"],
            "--dataset imdb={tmp}: give NAME=PATH with NAME one of sst2, trec6 (IMDB is the default)",
        ),
        (None, ["trec6={tmp}/missing"], "--dataset trec6={tmp}/missing: {tmp}/missing is not a folder"),
    ],
)
def test_bad_options_are_one_line(tmp_path, only, dataset, message):
    dataset = [item.format(tmp=tmp_path) for item in dataset]
    with pytest.raises(UserError) as error:
        results.pick(only, results.parse_folders(dataset))
    assert str(error.value) == message.format(tmp=tmp_path)


def test_the_command_prints_an_earlier_runs_table_and_its_differences(tmp_path, monkeypatch, capsys):
    (tmp_path / "README.md").write_text(README, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(experiments, "exp_show", exp_show_document)
    monkeypatch.setattr(experiments, "dvc", lambda *args, **kwargs: pytest.fail(f"ran dvc {args}"))
    args = build_parser().parse_args(["results", "--dataset", f"trec6={tmp_path}", "--only", "trec6", "--tag", TAG])
    args.run(args)
    out = capsys.readouterr().out.splitlines()
    assert out[2:5] == [
        "| trec6 | defaults | 0.792 ± 0.022 | 0.704 ± 0.024 | 0.793 ± 0.022 |",
        "| trec6 | recommended | 0.950 ± 0.015 | 0.822 ± 0.014 | 0.873 ± 0.003 |",
        "| trec6 | baseline | 1.000 | 0.845 | 0.880 |",
    ]
    assert out[6:10] == [
        "differs from README.md:",
        "trec6 defaults train: README 0.805 ± 0.005, now 0.792 ± 0.022",
        "trec6 defaults valid: README 0.714 ± 0.011, now 0.704 ± 0.024",
        "trec6 defaults test: README 0.807 ± 0.004, now 0.793 ± 0.022",
    ]


def test_a_workspace_with_uncommitted_changes_is_refused_before_anything_is_queued(tmp_path, monkeypatch):
    (tmp_path / "README.md").write_text(README, encoding="utf-8")
    for command in (
        ["init", "-q"],
        ["add", "README.md"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", *command], cwd=tmp_path, check=True)
    (tmp_path / "README.md").write_text(README + "\nmore\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(experiments, "dvc", lambda *args, **kwargs: pytest.fail(f"ran dvc {args}"))
    with pytest.raises(
        UserError, match="^the workspace has uncommitted changes to tracked files; commit or stash them"
    ):
        results.run(Namespace(dataset=None, only=None, jobs=1, tag=None))


def test_the_queue_is_followed_through_git_never_by_polling_dvc_queue_status(monkeypatch, capsys):
    """`dvc queue status` can stop a worker (experiments.py): results follows its runs as `textrnn seeds` does."""
    calls = []
    monkeypatch.setattr(experiments, "dvc", lambda *args, capture=False: calls.append(args) or "")
    trec6 = [results.experiment_name("t", "trec6", "defaults", seed) for seed in results.SEEDS]
    failed = trec6[1]

    def git(*args):
        if args[0] == "for-each-ref":
            ended = [name for name in trec6 if name != failed]
            return "".join(f"{i:040x} refs/exps/ab/cdef/{name}\n" for i, name in enumerate(ended))
        if args[:2] == ("log", "-g") and args[-1] == experiments.FAILED_REF:
            return f"commit: dvc-exp:{'e' * 40}:{'a' * 40}:{failed}\n"
        return ""

    monkeypatch.setattr(experiments, "git", git)
    monkeypatch.setattr(experiments, "workers_alive", lambda: True)
    monkeypatch.setattr(results.time, "sleep", lambda seconds: None)
    results.queue_and_run("t", [("trec6", "defaults")], {"trec6": "/data/trec6"}, jobs=2)
    assert [args[:2] for args in calls] == [("exp", "run")] * 3 + [("queue", "start")]
    assert calls[-1] == ("queue", "start", "-j", "2")
    assert capsys.readouterr().err.splitlines()[3:] == [
        f"{trec6[0]}: done",
        f"{failed}: FAILED; `dvc queue logs {failed}` shows why",
        f"{trec6[2]}: done",
    ]
