"""Reruns are exact: a change reruns the jobs it feeds, and only those.

One complete run of the synthetic workflow (two short subjects), then dry runs
(``snakemake -n --quiet rules``) whose job statistics are compared with the
expected plan, job by job:

- nothing changed: nothing to do;
- ``--config high_pass=0.02``: every subject's ``extract_timeseries`` and all that
  follows it, but no generation (download) nor confound job;
- a figure option (``figures.dpi``): only the figure rules (``plot_*``), and the
  methods paragraph, which names the setting;
- the rows of the subject sheet (``dataset: sheet``) in another order: nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ROOT_CONFIG = ROOT / "config" / "config.yaml"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SUBJECTS = ("01", "02")
SETTINGS = {"n_subjects": len(SUBJECTS), "synthetic": {"n_volumes": 100}}
#: Rules upstream of the extraction: never rerun by a cleaning parameter.
UPSTREAM = {
    "synthetic_atlas",
    "synthetic_subject",
    "dataset_description",
}


def plan(run_snakemake, folder: Path, *args: str) -> dict[str, int]:
    """Jobs a dry run would run, by rule (``{}`` when there is nothing to do)."""
    result = run_snakemake(
        "-n", "--quiet", "rules", "--configfile", ROOT_CONFIG, *args, cwd=folder
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout + result.stderr
    if "Job stats:" not in text:
        assert "Nothing to be done" in text, text[-3000:]
        return {}
    table = text.split("Job stats:")[1].split("total")[0]
    rows = (line.split() for line in table.splitlines())
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit()}


#: Name prefixes of the figure rules (workflow/rules/figures.smk).
FIGURE_RULES = ("plot_", "figures")


def figure_rules(jobs: dict[str, int]) -> dict[str, int]:
    """The jobs of the figure rules."""
    return {rule: n for rule, n in jobs.items() if rule.startswith(FIGURE_RULES)}


@pytest.fixture(scope="module")
def complete(tmp_path_factory, run_snakemake):
    """A folder holding one complete run, and its config file."""
    folder = tmp_path_factory.mktemp("reruns")
    config = folder / "test.yaml"
    config.write_text(yaml.safe_dump(SETTINGS))
    result = run_snakemake(
        "--configfile", ROOT_CONFIG, config, "--cores", "2", cwd=folder, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, config


@pytest.fixture(scope="module")
def full_plan(complete, run_snakemake) -> dict[str, int]:
    """Every job of the workflow (a forced dry run)."""
    folder, config = complete
    return plan(run_snakemake, folder, config, "--forceall")


def test_a_complete_run_leaves_nothing_to_do(complete, run_snakemake):
    folder, config = complete
    assert plan(run_snakemake, folder, config) == {}


def test_high_pass_reruns_extraction_and_everything_downstream(
    complete, full_plan, run_snakemake
):
    folder, config = complete
    jobs = plan(run_snakemake, folder, config, "--config", "high_pass=0.02")
    expected = {rule: n for rule, n in full_plan.items() if rule not in UPSTREAM}
    assert expected["extract_timeseries"] == len(SUBJECTS)
    assert expected["group_sparse_covariance"] == 1
    assert jobs == expected
    assert not UPSTREAM & jobs.keys()


def _figure_option() -> dict | None:
    """Settings changing one figure option (``figures.dpi``), or None."""
    figures = yaml.safe_load(SCHEMA.read_text())["properties"].get("figures", {})
    dpi = figures.get("properties", {}).get("dpi")
    if dpi is None:
        return None
    value = dpi["default"] + 1 if dpi["default"] < dpi["maximum"] else 30
    return {"figures": {"dpi": value}}


def test_a_figure_option_reruns_only_figures(complete, full_plan, run_snakemake):
    if not figure_rules(full_plan):
        pytest.skip("no figure rule (plot_*) in the workflow yet")
    option = _figure_option()
    if option is None:
        pytest.skip("no figure option figures.dpi in the config schema yet")
    folder, config = complete
    # (a nested key is set with a config file: --config figures={dpi: 101}
    # would pass the value as a string)
    changed = folder / "figures.yaml"
    changed.write_text(yaml.safe_dump(option))
    jobs = plan(run_snakemake, folder, config, changed)
    assert jobs.pop("all") == 1
    # the methods paragraph names every setting that differs from the defaults
    assert jobs.pop("methods") == 1
    assert jobs, f"{option} reruns nothing"
    assert jobs == figure_rules(jobs), f"{option} reruns {jobs}"
    # every PNG-drawing job of the workflow, nothing else
    assert jobs == figure_rules(full_plan)


def test_the_order_of_the_sheet_rows_reruns_nothing(complete, run_snakemake):
    folder, config = complete
    synthetic = "resources/synthetic"
    header = "subject\tfunc\tconfounds\tt_r\n"
    rows = [
        f"{s}\t{synthetic}/sub-{s}_bold.nii.gz\t"
        f"{synthetic}/sub-{s}_desc-confounds_timeseries.tsv\t2.5\n"
        for s in SUBJECTS
    ]
    sheet = folder / "sheet.tsv"
    sheet.write_text(header + "".join(rows))
    settings = {
        **SETTINGS,
        "dataset": "sheet",
        "subjects_sheet": "sheet.tsv",
        "atlas_maps": f"{synthetic}/atlas_maps.nii.gz",
        "atlas_labels": f"{synthetic}/atlas_labels.csv",
        "results_dir": "results_sheet",
    }
    sheet_config = folder / "sheet.yaml"
    sheet_config.write_text(yaml.safe_dump(settings))
    synthetic_log = folder / "results/logs/extract_timeseries/01.log"
    log_before = synthetic_log.read_bytes()
    result = run_snakemake(
        "--configfile",
        ROOT_CONFIG,
        sheet_config,
        "--cores",
        "2",
        cwd=folder,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # each results_dir keeps its own logs: the synthetic run's are untouched
    assert (folder / "results_sheet/logs/extract_timeseries/01.log").is_file()
    assert synthetic_log.read_bytes() == log_before
    assert plan(run_snakemake, folder, sheet_config) == {}
    sheet.write_text(header + "".join(reversed(rows)))
    assert plan(run_snakemake, folder, sheet_config) == {}
    # the synthetic run in the same folder is untouched by all this
    assert plan(run_snakemake, folder, config) == {}
