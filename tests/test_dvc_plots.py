"""The project's `plots:` section and templates draw every chart, for two classes and for three, and
the page `dvc plots show` writes draws them in a browser with no network.

A throwaway git + DVC repo holds the project's dvc.yaml `plots:` section, .dvc/config and .dvc/plots
templates, with plot data written by the library for two revisions: no training is needed.
"""

import csv
import importlib.util
import itertools
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT, run
from dvc_render.html import PAGE_HTML as HTML_PAGE

from textrnn.scoring.evaluation import write_test_plots

DVC = [sys.executable, "-m", "dvc"]
ADDED_BY_DVC = {"rev", "filename", "field"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)"
)


def load_build_script():
    """tools/build_plots_template.py, which makes and checks the offline page (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("build_plots_template", ROOT / "tools" / "build_plots_template.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD = load_build_script()


def declared_plots():
    """{title: [data files]} of the project's dvc.yaml."""
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    return {title: list(spec["y"]) for entry in plots for title, spec in entry.items()}


def read_rows(path: Path):
    if path.suffix == ".tsv":  # DVC reads every TSV value as a string
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle, delimiter="\t"))
    return json.loads(path.read_text())


def write_revision(repo: Path, k: int, seed: int, n: int) -> dict:
    """Every declared data file, as the stages would write it; returns {file: rows}."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=n) + 2.0 * labels - 1.0 if k == 2 else rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels]
    names = ["neg", "pos"] if k == 2 else ["ABBR", "DESC", "ENTY"]
    write_test_plots(repo / "metrics/plots", repo / "plots/evaluation", logits, labels, names)
    for split in ("train", "valid"):  # DVCLive's per-epoch TSVs
        for metric in ("loss", "accuracy"):
            path = repo / f"plots/training/plots/metrics/{split}/{metric}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            values = rng.random(3)
            path.write_text(f"step\t{metric}\n" + "".join(f"{step}\t{v:.4f}\n" for step, v in enumerate(values, 1)))
    return {file: read_rows(repo / file) for files in declared_plots().values() for file in files}


def drawn(chart) -> dict:
    """{rev: the chart's data points, less what DVC adds} of one `dvc plots --json` chart."""
    assert len(chart) == 1 and chart[0]["type"] == "vega"
    points = {}
    for point in chart[0]["content"]["data"]["values"]:
        points.setdefault(point["rev"], []).append({k: v for k, v in point.items() if k not in ADDED_BY_DVC})
    return points


def expected(files: dict, title: str) -> list:
    return [row for file in declared_plots()[title] for row in files[file]]


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q"], repo)
    run(["git", "config", "user.email", "test@example.com"], repo)
    run(["git", "config", "user.name", "test"], repo)
    run(DVC + ["init", "-q"], repo)
    shutil.copy2(ROOT / ".dvc" / "config", repo / ".dvc" / "config")  # plots.html_template
    run(DVC + ["config", "core.analytics", "false"], repo)
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}, sort_keys=False))
    return repo


def test_the_project_declares_the_evaluation_charts():
    assert declared_plots() == {
        "Loss": ["plots/training/plots/metrics/train/loss.tsv", "plots/training/plots/metrics/valid/loss.tsv"],
        "Accuracy": [
            "plots/training/plots/metrics/train/accuracy.tsv",
            "plots/training/plots/metrics/valid/accuracy.tsv",
        ],
        "Confusion matrix (test)": ["metrics/plots/confusion.json"],
        "ROC (test)": ["metrics/plots/roc.json"],
    }


@pytest.mark.slow  # dvc plots show / diff
@pytest.mark.parametrize("k", [2, 3])
def test_plots_show_and_diff_draw_every_chart_per_revision(repo, k):
    committed = write_revision(repo, k, seed=1, n=300)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "first"], repo)
    workspace = write_revision(repo, k, seed=2, n=400)

    show = json.loads(run(DVC + ["plots", "show", "--json"], repo).stdout)
    assert "errors" not in show
    assert set(show["data"]) == set(declared_plots())
    for title, chart in show["data"].items():
        assert drawn(chart) == {"workspace": expected(workspace, title)}, title
        assert chart[0]["revisions"] == ["workspace"]

    diff = json.loads(run(DVC + ["plots", "diff", "--json", "HEAD"], repo).stdout)
    assert "errors" not in diff
    assert set(diff["data"]) == set(declared_plots())
    for title, chart in diff["data"].items():
        assert drawn(chart) == {"workspace": expected(workspace, title), "HEAD": expected(committed, title)}, title

    confusion = diff["data"]["Confusion matrix (test)"][0]["content"]
    assert confusion["spec"]["transform"][0]["aggregate"] == [{"op": "sum", "field": "count", "as": "cell_count"}]
    curves = {p["class"] for p in diff["data"]["ROC (test)"][0]["content"]["data"]["values"]}
    assert curves == ({"pos"} if k == 2 else {"ABBR", "DESC", "ENTY"})

    html = run(DVC + ["plots", "diff", "HEAD", "-o", str(repo.parent / "html")], repo)
    assert "failed to load" not in (html.stdout + html.stderr).lower()
    page = (repo.parent / "html" / "index.html").read_text()
    assert re.findall(r"<script data-package=\"([^\"]+)\">", page) == [
        f"{p.name}@{p.version}" for p in BUILD.PACKAGES
    ] + ["textrnn"]
    assert re.search(r"<script[^>]*\bsrc=", page) is None  # nothing loaded from elsewhere


def test_the_committed_offline_page_inlines_the_pinned_files():
    """.dvc/config names it (the tests' repos copy that config, and their pages hold these scripts)."""
    BUILD.verify(BUILD.PAGE.read_text(encoding="utf8"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda page: page.replace("function", "function ", 1),
            "the page's vega@5.33.1 build/vega.min.js does not match its header's sha256; rebuild it",
        ),
        (
            lambda page: page.replace("vega-lite@5.23.0 build", "vega-lite@5.22.0 build"),
            "the page's header names ['vega@5.33.1', 'vega-lite@5.22.0', 'vega-embed@6.29.0'], not PACKAGES; "
            "rebuild it",
        ),
        (
            lambda page: page.replace("{plot_divs}", "{scripts}"),
            "the page must hold {plot_divs} once and {scripts} nowhere",
        ),
    ],
)
def test_an_edited_offline_page_is_refused(edit, message):
    page = BUILD.PAGE.read_text(encoding="utf8")
    assert [(p.name, p.version) for p in BUILD.PACKAGES] == [
        ("vega", "5.33.1"),
        ("vega-lite", "5.23.0"),
        ("vega-embed", "6.29.0"),
    ]
    with pytest.raises(ValueError) as error:
        BUILD.verify(edit(page))
    assert str(error.value) == message


def render_offline(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The page's DOM once its scripts ran in headless Chromium with no host name resolvable (no network),
    and the console's lines."""
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # as root, as in CI's container
            "--disable-gpu",
            "--no-first-run",
            "--disable-sync",
            "--disable-background-networking",
            "--disable-component-update",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",  # virtual ms for the scripts to finish; idle time is skipped
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=300,  # a hung browser fails the test instead of CI
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


SVG = "{http://www.w3.org/2000/svg}"
BROKEN_CHART = """<div id="broken"><script>
vegaEmbed('#broken', {"data": {"values": [{"a": 1}]}, "mark": "point",
                      "transform": [{"calculate": "datum.a +", "as": "b"}]});
</script></div>
"""


def svg_marks(svg: str) -> list[dict]:
    """Every mark Vega drew in a chart's SVG: {"mark": line|rect|..., "panel": its innermost scope group (a
    facet's panel), "stroke", "points" (of its path), "datum": its aria-label's fields (a line's: its first
    point's)}."""
    marks, scopes = [], itertools.count()

    def walk(element, panel):
        kind = re.fullmatch(r"mark-(\w+) role-mark .*", element.get("class", ""))
        if kind is None and "role-scope" in element.get("class", ""):
            panel = next(scopes)
        for child in element:
            if kind and child.get("role") == "graphics-symbol":
                marks.append(
                    {
                        "mark": kind.group(1),
                        "panel": panel,
                        "stroke": child.get("stroke"),
                        "points": len(re.findall(r"[ML]", child.get("d", ""))),
                        "datum": dict(field.split(": ", 1) for field in child.get("aria-label").split("; ")),
                    }
                )
            elif child.tag == f"{SVG}g":
                walk(child, panel)

    walk(ET.fromstring(svg), None)
    return marks


def drawn_marks(dom: str) -> dict[str, list[dict]]:
    """{chart id: svg_marks of its SVG} of each vega-embed chart in a dumped DOM ([] where it drew no SVG)."""
    divs = list(re.finditer(r'<div id="([^"]+)" class="vega-embed', dom))
    bounds = [div.start() for div in divs] + [len(dom)]
    charts = {}
    for div, end in zip(divs, bounds[1:], strict=True):
        svg = re.search(r'<svg[^>]*class="marks".*?</svg>', dom[div.start() : end], re.DOTALL)
        charts[div.group(1)] = svg_marks(svg.group(0)) if svg else []
    return charts


def colours(marks: list[dict]) -> dict[str, set]:
    """{rev: the stroke colours of its lines}."""
    by_rev = {}
    for mark in marks:
        if mark["mark"] == "line":
            by_rev.setdefault(mark["datum"]["rev"], set()).add(mark["stroke"])
    return by_rev


@pytest.mark.slow  # dvc plots diff, twice, and a browser
@needs_chromium
def test_plots_draw_offline_in_a_headless_browser_one_colour_per_revision(repo, tmp_path):
    """The issue's run: every chart of two revisions drew with no network; DVC's own page (CDN) draws none."""
    classes = ["ABBR", "DESC", "ENTY"]
    committed = write_revision(repo, 3, seed=1, n=300)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "first"], repo)
    workspace = write_revision(repo, 3, seed=2, n=400)
    revisions = {"workspace": workspace, "HEAD": committed}
    run(DVC + ["plots", "diff", "HEAD", "-o", str(tmp_path / "offline")], repo)
    page = tmp_path / "offline" / "index.html"
    html = page.read_text()
    end = html.rindex("</body>")  # a fifth chart whose spec fails: the page says why instead of staying blank
    page.write_text(html[:end] + BROKEN_CHART + html[end:])

    dom, console = render_offline(page, tmp_path / "profile")
    assert [line for line in console if "Uncaught" in line] == []
    assert re.findall(r'<pre class="chart-error">([^<]*)</pre>', dom) == [
        "this chart failed to draw: Error: Unexpected end of input"
    ]
    charts = drawn_marks(dom)
    assert list(charts) == ["Loss", "Accuracy", "Confusion_matrix__test_", "ROC__test_"]

    for chart, metric in (("Loss", "loss"), ("Accuracy", "accuracy")):
        lines = [m for m in charts[chart] if m["mark"] == "line"]
        files = {
            f"{split}/{metric}.tsv": f"plots/training/plots/metrics/{split}/{metric}.tsv"
            for split in ("train", "valid")
        }
        # DVC's linear template draws each series twice (smoothed, and faint as it is): rev x file, 3 epochs
        assert Counter((m["datum"]["rev"], m["datum"]["filename"]) for m in lines) == {
            (rev, name): 2 for rev in revisions for name in files
        }
        assert {(m["datum"]["rev"], m["datum"]["filename"], m["datum"][metric], m["points"]) for m in lines} == {
            (rev, name, rows[path][0][metric], len(rows[path]))
            for rev, rows in revisions.items()
            for name, path in files.items()
        }

    cells = [m["datum"] for m in charts["Confusion_matrix__test_"] if m["mark"] == "rect"]
    assert {(c["rev"], c["actual"], c["predicted"]): int(c["count"]) for c in cells} == {
        (rev, row["actual"], row["predicted"]): row["count"]
        for rev, rows in revisions.items()
        for row in rows["metrics/plots/confusion.json"]
    }
    assert len(cells) == 2 * len(classes) ** 2

    curves = [m for m in charts["ROC__test_"] if m["mark"] == "line"]  # a panel per class, a line per revision
    assert sorted((m["datum"]["rev"], m["points"]) for m in curves) == sorted(
        (rev, sum(row["class"] == name for row in rows["metrics/plots/roc.json"]))
        for rev, rows in revisions.items()
        for name in classes
    )
    assert len({m["panel"] for m in curves}) == len(classes)

    # one colour per revision, the same in every chart that colours by revision
    palette = colours(charts["Loss"])
    assert all(len(strokes) == 1 for strokes in palette.values()) and len(set.union(*palette.values())) == 2
    assert colours(charts["Accuracy"]) == palette
    assert colours(charts["ROC__test_"]) == palette

    # DVC's own page loads Vega from a CDN: offline it draws nothing, as the issue saw
    (tmp_path / "dvc_page.html").write_text(HTML_PAGE)
    run(
        DVC
        + ["plots", "diff", "HEAD", "-o", str(tmp_path / "cdn"), "--html-template", str(tmp_path / "dvc_page.html")],
        repo,
    )
    dom, console = render_offline(tmp_path / "cdn" / "index.html", tmp_path / "profile")
    assert "<svg" not in dom and drawn_marks(dom) == {}
    assert sum("Uncaught ReferenceError: vegaEmbed is not defined" in line for line in console) == 4
