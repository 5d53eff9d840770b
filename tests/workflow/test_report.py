"""The HTML report of a small synthetic run, opened in headless Chromium.

Two subjects of 100 volumes run to completion, then ``snakemake --report``
builds the self-contained HTML report. Chromium (Debian's ``chromium`` package,
installed by the test when absent) loads it from disk with networking off (every
host name resolves to nothing). A small script injected into a copy of the report drives
the report's own viewer: it opens every figure the way a click on it does and
records each displayed ``<img>``'s natural size (0 for a broken image) into the
DOM, which ``--dump-dom`` prints once the page's JavaScript has run. A screenshot
of a figure page must not be blank.
"""

from __future__ import annotations

import base64
import html as html_module
import json
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from tests.debian import apt_install, can_install

pytestmark = pytest.mark.slow

ROOT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"
CHROMIUM_NAMES = ("chromium", "chromium-browser")

#: Expected figures (path under results/figures/ -> PNG width, height at 100 dpi).
FIGURES = {
    **{
        f"sub-01_atlas-synthetic_desc-{e}_connectome.png": (1200, 460)
        for e in ("groupsparse", "graphlasso")
    },
    **{
        f"sub-01_atlas-synthetic_stat-{k}_desc-{e}_matrix.png": (760, 680)
        for e in ("groupsparse", "graphlasso")
        for k in ("covariance", "sparsity", "precision")
    },
    **{
        f"atlas-synthetic_desc-{e}_cv.png": (600, 400)
        for e in ("groupsparse", "graphlasso")
    },
    **{f"sub-{s}_atlas-synthetic_qc.png": (800, 500) for s in ("01", "02", "03")},
    "atlas-synthetic_desc-qcfc.png": (650, 420),
    "atlas-synthetic_desc-modelcomparison.png": (650, 420),
    "atlas-synthetic_desc-recovery.png": (800, 360),
}
CATEGORIES = [
    "1. Connectomes",
    "2. Matrices",
    "3. Cross-validation",
    "4. Subject quality control",
    "5. Science check",
]

# Records the front page's text, opens every image result in the report's viewer
# (as a click on it does), waits for the <img> to finish loading, opens every HTML
# result (its <iframe>), and writes what it saw into <pre id=...>; ends on the
# result whose name ends with __LAST__ for the screenshot.
CHECK_SCRIPT = """
<script>
(function () {
  const seen = [];
  const pages = [];
  let front = "";
  const keys = Object.keys(results).filter((k) => /\\.(png|svg)$/i.test(k));
  const htmls = Object.keys(results).filter((k) => /\\.html$/i.test(k));
  const last = Object.keys(results).find((k) => k.endsWith("__LAST__")) || keys[0];
  function finish() {
    const pre = document.createElement("pre");
    pre.id = "sparseconn-check";
    pre.style.display = "none";
    pre.textContent = JSON.stringify({
      categories: Object.keys(categories),
      images: seen,
      pages: pages,
      front: front,
    });
    document.body.appendChild(pre);
  }
  function show(key) {
    const content = /\\.html$/i.test(key) ? "html" : "img";
    const uri = results[key].data_uri;
    app.setView({content: content, contentPath: uri, resultPath: key});
  }
  function framed(key) {
    return Array.from(document.querySelectorAll("#app iframe")).some(
      (el) => el.getAttribute("src") === results[key].data_uri
    );
  }
  function showPages(j) {
    if (j >= htmls.length) {
      show(last);
      setTimeout(finish, 500);
      return;
    }
    show(htmls[j]);
    setTimeout(() => {
      pages.push({path: htmls[j], shown: framed(htmls[j])});
      showPages(j + 1);
    }, 300);
  }
  function next(i) {
    if (i >= keys.length) {
      showPages(0);
      return;
    }
    show(keys[i]);
    let tries = 0;
    (function poll() {
      const img = Array.from(document.querySelectorAll("#app img")).find(
        (el) => el.getAttribute("src") === results[keys[i]].data_uri
      );
      if (img && img.complete) {
        seen.push({path: keys[i], width: img.naturalWidth, height: img.naturalHeight});
        next(i + 1);
      } else if (tries++ < 200) {
        setTimeout(poll, 50);
      } else {
        seen.push({path: keys[i], width: 0, height: 0, shown: Boolean(img)});
        next(i + 1);
      }
    })();
  }
  window.addEventListener("load", () => setTimeout(() => {
    const prose = document.querySelector("#app .prose");
    front = prose ? prose.innerText : "";
    next(0);
  }, 200));
})();
</script>
"""


def _find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _chromium() -> str:
    """Chromium's path; Debian's package is installed first when it is absent."""
    found = _find_chromium()
    if found is None and can_install():
        apt_install(["chromium"])
        found = _find_chromium()
    if found is None:
        pytest.fail(
            "Chromium is required to check the report and could not be installed "
            "here: install Debian's chromium package (apt-get install -y chromium)"
        )
    return found


def _run_chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        # no network: every host name resolves to nothing
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=30000",
        *args,
        page.as_uri(),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def report(default_run, run_snakemake):
    """The default run (3 subjects, tests/workflow/conftest.py) and its report."""
    folder = default_run
    html = folder / "report.html"
    result = run_snakemake(
        "--configfile", ROOT_CONFIG, folder / "test.yaml", "--report", html, cwd=folder
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, html


def _checked_copy(html: Path, folder: Path, last: str) -> Path:
    """A copy of the report with the checking script (ending on ``last``)."""
    text = html.read_text(encoding="utf-8")
    end = text.rindex("</body>")
    page = folder / "report.html"
    script = CHECK_SCRIPT.replace("__LAST__", last)
    page.write_text(text[:end] + script + text[end:], encoding="utf-8")
    return page


@pytest.fixture(scope="module")
def checked_page(report, tmp_path_factory):
    """A copy of the report with the checking script before ``</body>``."""
    _, html = report
    return _checked_copy(
        html, tmp_path_factory.mktemp("page"), "groupsparse_connectome.png"
    )


def _checked_dom(page: Path, profile: Path) -> dict:
    """What the checking script saw, from Chromium's dump of the page's DOM."""
    result = _run_chromium(page, profile, "--dump-dom")
    match = re.search(
        r'<pre id="sparseconn-check"[^>]*>(.*?)</pre>', result.stdout, re.DOTALL
    )
    assert match, "the report's JavaScript did not run to the end"
    return json.loads(html_module.unescape(match.group(1)))


def test_every_figure_is_written_with_its_size(report):
    folder, _ = report
    figures = folder / "results" / "figures"
    assert sorted(p.name for p in figures.iterdir()) == sorted(FIGURES)
    for name, (width, height) in FIGURES.items():
        pixels = matplotlib.image.imread(figures / name)
        assert pixels.shape[:2] == (height, width), name
        assert pixels[..., :3].std() > 0.02, f"{name} is blank"


def test_report_embeds_every_figure_and_needs_no_network(report):
    _, html = report
    text = html.read_text(encoding="utf-8")
    for name in FIGURES:
        assert f"filename={name};base64," in text, name
    # the scans' QC table: inclusion in the group stage, reasons and warnings
    assert "filename=atlas-synthetic_desc-scans_qc.tsv;base64," in text
    # nothing is fetched from elsewhere: no remote script, style sheet or image
    remote = re.findall(r"<(?:script|link|img)[^>]+(?:src|href)=\"https?://", text)
    assert remote == []


def test_figures_render_in_chromium(checked_page, tmp_path):
    seen = _checked_dom(checked_page, tmp_path / "profile")
    assert sorted(seen["categories"]) == CATEGORIES
    shown = {Path(item["path"]).name: item for item in seen["images"]}
    assert sorted(shown) == sorted(FIGURES)
    for name, (width, height) in FIGURES.items():
        assert (shown[name]["width"], shown[name]["height"]) == (width, height), (
            f"{name} is not rendered: {shown[name]}"
        )


def test_screenshot_of_a_figure_page_is_not_blank(checked_page, tmp_path):
    shot = tmp_path / "screenshot.png"
    _run_chromium(
        checked_page,
        tmp_path / "profile",
        "--hide-scrollbars",
        "--window-size=1400,900",
        f"--screenshot={shot}",
    )
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (900, 1400)
    assert pixels.std() > 0.05
    # the figure area (right of the menu) holds the drawn connectome: coloured
    # edges, not just a white page
    content = pixels[:, 300:]
    saturated = (content.max(axis=-1) - content.min(axis=-1)) > 0.3
    assert saturated.mean() > 0.002
    assert (content.mean(axis=-1) < 0.9).mean() > 0.02


GROUP_QC_PAGE = "atlas-synthetic_desc-groupqc_report.html"


def _embedded(text: str, name: str) -> str:
    """The content of the result ``name`` embedded in the report (base64)."""
    match = re.search(rf"filename={re.escape(name)};base64,([A-Za-z0-9+/=]+)", text)
    assert match, f"{name} is not embedded in the report"
    return base64.b64decode(match.group(1)).decode("utf-8")


def test_report_embeds_the_group_qc_table_and_the_qcfc_summary(report):
    folder, html = report
    page = _embedded(html.read_text(encoding="utf-8"), GROUP_QC_PAGE)
    scans = (folder / "results/group/atlas-synthetic_desc-scans_qc.tsv").read_text()
    header = scans.splitlines()[0].split("\t")
    for column in ("mean_fd", "volumes_censored", "dof_lost_confounds"):
        assert column in header
        assert f"<th>{column}</th>" in page
    for scan in ("sub-01", "sub-02", "sub-03"):
        assert f"<td>{scan}</td>" in page
    summary = json.loads(
        (folder / "results/group/atlas-synthetic_desc-qcfc_edges.json").read_text()
    )
    assert summary["Computed"] is True
    assert f"median |r| {summary['MedianAbsoluteR']:.3f}" in page


def test_front_page_shows_the_methods_paragraph_and_chromium_the_qc_page(
    checked_page, report, tmp_path
):
    folder, _ = report
    seen = _checked_dom(checked_page, tmp_path / "profile")
    front = seen["front"]
    assert "Methods (generated from this run's settings)" in front
    methods = (folder / "results/methods.rst").read_text()
    assert "Varoquaux et al. 2010" in front and "Ciric et al. 2017" in front
    # the settings of this run that differ from the defaults, by name
    assert "n_subjects = 3 (default 10)" in front
    assert "synthetic.n_volumes = 100 (default 176)" in front
    # the paragraph as generated (rst literals shown as text)
    paragraph = methods.split("\n\n")[1].replace("``", "")
    assert " ".join(paragraph.split()) in " ".join(front.split())
    assert [Path(p["path"]).name for p in seen["pages"]] == [GROUP_QC_PAGE]
    assert all(p["shown"] for p in seen["pages"])


def test_screenshot_of_the_group_qc_page_shows_the_table(report, tmp_path):
    _, html = report
    page = _checked_copy(html, tmp_path, GROUP_QC_PAGE)
    shot = tmp_path / "screenshot.png"
    _run_chromium(
        page,
        tmp_path / "profile",
        "--hide-scrollbars",
        "--window-size=1400,900",
        f"--screenshot={shot}",
    )
    pixels = matplotlib.image.imread(shot)[..., :3]
    content = pixels[:, 300:]
    # the table's header cells (#dde6f2) and dark text are drawn
    header = np.all(np.abs(content - np.array([0xDD, 0xE6, 0xF2]) / 255) < 0.02, -1)
    assert header.mean() > 0.001
    assert (content.mean(axis=-1) < 0.3).mean() > 0.001
