"""Build .dvc/plots/offline.html: the page DVC fills for `dvc plots show` and `dvc plots diff`, with Vega,
Vega-Lite and vega-embed inlined from pinned npm packages, so that the charts draw with no network.

    python tools/build_plots_template.py           # fetch the pinned packages with `npm pack`, write the page
    python tools/build_plots_template.py --verify  # no network: the page's scripts are the pinned files, unedited

DVC's own page loads the three libraries from a CDN and draws nothing offline. .dvc/config names this page
(`plots.html_template = plots/offline.html`, relative to .dvc/), so plain `dvc plots show` uses it. To move to
newer releases, change PACKAGES (version and the registry's `npm view NAME@VERSION dist.integrity`), run this
script and commit the page with it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / ".dvc" / "plots" / "offline.html"


class Package(NamedTuple):
    name: str
    version: str
    file: str  # the minified browser build inside the package (its `jsdelivr` entry)
    integrity: str  # the npm registry's dist.integrity of NAME@VERSION's tarball


# In load order: vega-lite needs vega, vega-embed needs both.
PACKAGES = (
    Package(
        "vega",
        "5.33.1",
        "build/vega.min.js",
        "sha512-1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw==",
    ),
    Package(
        "vega-lite",
        "5.23.0",
        "build/vega-lite.min.js",
        "sha512-l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA==",
    ),
    Package(
        "vega-embed",
        "6.29.0",
        "build/vega-embed.min.js",
        "sha512-PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q==",
    ),
)

# DVC replaces these with its own text anywhere in the page (dvc_render.html.HTML.embed): the CDN script tags,
# the charts and the auto-refresh tag. The page holds plot_divs and refresh_tag once each and scripts nowhere.
PLACEHOLDERS = ("{scripts}", "{plot_divs}", "{refresh_tag}")

# DVC writes one `vegaEmbed('#id', spec)` per chart. The wrapper draws SVG (sharp when zoomed, and readable
# back, which the browser test does) and puts a chart's error on the page instead of leaving it blank.
WRAPPER = """(function () {
  var embed = window.vegaEmbed;
  function drawSvg(el, spec, opt) {
    return embed(el, spec, Object.assign({renderer: "svg"}, opt)).catch(function (error) {
      var note = document.createElement("pre");
      note.className = "chart-error";
      note.textContent = "this chart failed to draw: " + error;
      ((typeof el === "string" ? document.querySelector(el) : el) || document.body).appendChild(note);
    });
  }
  window.vegaEmbed = Object.assign(drawSvg, embed);
})();"""

HEADER_LINE = re.compile(r"^     (\S+)@(\S+) (\S+) sha256 ([0-9a-f]{64})$", re.MULTILINE)
SCRIPT = re.compile(r'<script data-package="([^"]+)">\n(.*?)\n</script>', re.DOTALL)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf8")).hexdigest()


def page(sources: dict[Package, str]) -> str:
    """The template: a header naming each inlined file, the files in load order, the wrapper, DVC's charts."""
    lines = "\n".join(f"     {p.name}@{p.version} {p.file} sha256 {sha256(sources[p])}" for p in PACKAGES)
    scripts = "\n".join(f'<script data-package="{p.name}@{p.version}">\n{sources[p]}\n</script>' for p in PACKAGES)
    return f"""<!DOCTYPE html>
<!-- textrnn's page for `dvc plots show` and `dvc plots diff` (.dvc/config: plots.html_template): Vega, Vega-Lite
     and vega-embed are inlined (BSD-3-Clause, from npm), so the charts draw with no network. Made by
     tools/build_plots_template.py; do not edit. The inlined files, unchanged, and their sha256:
{lines}
-->
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC Plot</title>
{scripts}
<script data-package="textrnn">
{WRAPPER}
</script>
    <style>
        body {{
            font-family: sans-serif;
        }}
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def check_source(package: Package, source: str) -> None:
    """A file DVC's placeholders or an HTML parser would break inside the page is refused."""
    for placeholder in PLACEHOLDERS:
        if placeholder in source:
            raise SystemExit(f"{package.name}@{package.version} {package.file} holds {placeholder}, which DVC replaces")
    if re.search(r"</script|<!--|<script", source, re.IGNORECASE):
        raise SystemExit(f"{package.name}@{package.version} {package.file} holds a script tag or comment opener")


def fetch(package: Package, directory: Path) -> str:
    """The package's file, from the tarball `npm pack` fetches, after checking the tarball's pinned integrity."""
    spec = f"{package.name}@{package.version}"
    try:
        result = subprocess.run(
            ["npm", "pack", spec, "--silent", "--pack-destination", str(directory)],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        raise SystemExit("npm is not on PATH; install Node.js's npm (Debian: apt-get install npm)") from None
    if result.returncode != 0:
        raise SystemExit(f"npm pack {spec} failed: {result.stderr.strip()}")
    tarball = directory / result.stdout.strip().splitlines()[-1]
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != package.integrity:
        raise SystemExit(f"{spec}: the tarball's integrity is {digest}, not the pinned {package.integrity}")
    with tarfile.open(tarball) as archive:
        source = archive.extractfile(f"package/{package.file}").read().decode("utf8")
    check_source(package, source)
    return source


def verify(text: str) -> None:
    """Raise ValueError unless the page inlines exactly PACKAGES' files, each matching its header line."""
    header = [(f"{name}@{version}", file, digest) for name, version, file, digest in HEADER_LINE.findall(text)]
    if [(spec, file) for spec, file, _ in header] != [(f"{p.name}@{p.version}", p.file) for p in PACKAGES]:
        raise ValueError(f"the page's header names {[spec for spec, _, _ in header]}, not PACKAGES; rebuild it")
    scripts = {name: sha256(source) for name, source in SCRIPT.findall(text)}
    for spec, file, digest in header:
        if scripts.get(spec) != digest:
            raise ValueError(f"the page's {spec} {file} does not match its header's sha256; rebuild it")
    if "{scripts}" in text or text.count("{plot_divs}") != 1:
        raise ValueError("the page must hold {plot_divs} once and {scripts} nowhere")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verify", action="store_true", help="check the committed page offline; write nothing")
    parser.add_argument("--output", type=Path, default=PAGE, help=f"default: {PAGE.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    if args.verify:
        try:
            verify(args.output.read_text(encoding="utf8"))
        except ValueError as error:
            raise SystemExit(f"{args.output}: {error}") from None
        print(f"{args.output}: ok")
        return
    with tempfile.TemporaryDirectory() as directory:
        sources = {package: fetch(package, Path(directory)) for package in PACKAGES}
    text = page(sources)
    verify(text)
    partial = args.output.with_name(args.output.name + ".partial")  # a failed write leaves the old page whole
    partial.write_text(text, encoding="utf8")
    partial.replace(args.output)
    print(f"wrote {args.output} ({len(text.encode('utf8')):,} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])
