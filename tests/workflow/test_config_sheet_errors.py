"""Bad config and subjects sheets stop the real workflow with one clear line.

Each case runs ``snakemake -n`` (a dry run is enough: the config and the sheet are
checked while the workflow is read) in a temporary folder, and checks: non-zero
exit, exactly one ``sparseconn: error: <file>: <problem>`` line on stderr, and no
results folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ERROR_PREFIX = "sparseconn: error: "


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working folder with two (empty) images and an (empty) atlas."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a_bold.nii.gz", "b_bold.nii.gz", "atlas.nii.gz", "a.tsv"):
        (data / name).write_bytes(b"")
    return tmp_path


def write_config(workdir: Path, **settings) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump({"results_dir": "results", **settings}))
    return path


def write_sheet(workdir: Path, *lines: str) -> Path:
    path = workdir / "subjects.tsv"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def sheet_config(workdir: Path, *lines: str) -> tuple[Path, Path]:
    sheet = write_sheet(workdir, *lines)
    config = write_config(
        workdir,
        dataset="sheet",
        subjects_sheet=str(sheet),
        atlas_maps="data/atlas.nii.gz",
    )
    return config, sheet


def error_line(result) -> str:
    """The one error line of a failed run (asserting there is exactly one)."""
    assert result.returncode != 0, result.stderr
    lines = [
        line for line in result.stderr.splitlines() if line.startswith(ERROR_PREFIX)
    ]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def dry_run(run_snakemake, workdir: Path, config: Path, *args: str):
    result = run_snakemake("-n", "--configfile", config, *args, cwd=workdir)
    assert not (workdir / "results").exists()
    return result


def test_unknown_config_key(run_snakemake, workdir: Path) -> None:
    config = write_config(workdir, n_subject=3)
    line = error_line(dry_run(run_snakemake, workdir, config))
    assert line.startswith(f"{ERROR_PREFIX}{config}: unknown key 'n_subject'")
    assert "did you mean 'n_subjects'?" in line


def test_unknown_config_key_from_command_line(run_snakemake, workdir: Path) -> None:
    config = write_config(workdir)
    line = error_line(dry_run(run_snakemake, workdir, config, "--config", "reslts=x"))
    assert "--config: unknown key 'reslts'" in line
    assert "did you mean 'results_dir'?" in line


def test_config_value_out_of_bounds(run_snakemake, workdir: Path) -> None:
    config = write_config(workdir, n_subjects=0)
    line = error_line(dry_run(run_snakemake, workdir, config))
    assert line == (
        f"{ERROR_PREFIX}{config}: n_subjects: 0 is less than the minimum of 1"
    )


def test_sheet_missing_column(run_snakemake, workdir: Path) -> None:
    config, sheet = sheet_config(workdir, "subject\tconfounds", "01\tdata/a.tsv")
    line = error_line(dry_run(run_snakemake, workdir, config))
    assert line.startswith(f"{ERROR_PREFIX}{sheet}: missing required column 'func'")


def test_sheet_duplicate_subject(run_snakemake, workdir: Path) -> None:
    config, sheet = sheet_config(
        workdir,
        "subject\tfunc",
        "01\tdata/a_bold.nii.gz",
        "01\tdata/b_bold.nii.gz",
    )
    line = error_line(dry_run(run_snakemake, workdir, config))
    assert line == f"{ERROR_PREFIX}{sheet}: duplicate subject '01' (lines 2 and 3)"


@pytest.mark.parametrize("subject", ["a/b", "../01", "sub 01", "01 "])
def test_sheet_invalid_subject_id(run_snakemake, workdir: Path, subject: str) -> None:
    config, sheet = sheet_config(
        workdir, "subject\tfunc", f"{subject}\tdata/a_bold.nii.gz"
    )
    line = error_line(dry_run(run_snakemake, workdir, config))
    assert line.startswith(
        f"{ERROR_PREFIX}{sheet}: line 2: invalid subject id {subject!r}: "
        "letters and digits only, as in BIDS labels"
    )


def test_sheet_missing_func_file(run_snakemake, workdir: Path) -> None:
    config, sheet = sheet_config(workdir, "subject\tfunc", "01\tdata/nope.nii.gz")
    line = error_line(dry_run(run_snakemake, workdir, config))
    assert line.startswith(f"{ERROR_PREFIX}{sheet}: line 2 (subject '01'): func file")
    assert "nope.nii.gz' does not exist" in line


def test_sheet_without_atlas(run_snakemake, workdir: Path) -> None:
    sheet = write_sheet(workdir, "subject\tfunc", "01\tdata/a_bold.nii.gz")
    config = write_config(workdir, dataset="sheet", subjects_sheet=str(sheet))
    line = error_line(dry_run(run_snakemake, workdir, config))
    assert f"{config}: atlas_maps is required with dataset 'sheet'" in line


def test_valid_sheet_plans_every_subject(run_snakemake, workdir: Path) -> None:
    rows = [
        "02\tdata/b_bold.nii.gz\t\t2.5\tyes",
        "01\tdata/a_bold.nii.gz\tdata/a.tsv\t\t",
    ]
    header = "subject\tfunc\tconfounds\tt_r\texclude"
    config, _ = sheet_config(workdir, header, *rows)
    plans = []
    for order in (rows, rows[::-1]):
        write_sheet(workdir, header, *order)
        result = dry_run(run_snakemake, workdir, config, "--quiet", "rules")
        assert result.returncode == 0, result.stderr
        plans.append(job_counts(result.stdout))
    expected = {
        "dataset_description": 1,
        "extract_timeseries": 2,
        "group_sparse_covariance": 1,
        "graph_lasso": 1,
        "all": 1,
    }
    assert plans[0] == plans[1]  # the rows' order changes nothing
    assert expected.items() <= plans[0].items()


def job_counts(stdout: str) -> dict[str, int]:
    """The first "Job stats" table of a dry run, as {rule: count}."""
    lines = stdout[stdout.index("Job stats:") :].splitlines()[3:]
    counts = {}
    for line in lines:
        rule, count = line.split()
        if rule == "total":
            return counts
        counts[rule] = int(count)
    raise AssertionError(stdout)


#: The science check's rules.
SCIENCE_RULES = {
    "heldout_group_sparse",
    "heldout_subjects",
    "model_comparison",
    "recovery_scores",
}


@pytest.mark.parametrize(
    ("settings", "absent"),
    [
        ({}, set()),
        ({"science_check": False}, SCIENCE_RULES),
        ({"figures": {"subject_qc": False}}, {"plot_subjects_qc"}),
    ],
)
def test_optional_parts_are_planned_only_when_enabled(
    run_snakemake, workdir: Path, settings, absent
) -> None:
    config = write_config(workdir, n_subjects=3, **settings)
    result = dry_run(run_snakemake, workdir, config, "--quiet", "rules")
    assert result.returncode == 0, result.stderr
    planned = set(job_counts(result.stdout))
    optional = {*SCIENCE_RULES, "plot_subjects_qc"}
    assert planned & optional == optional - absent
    assert {"group_sparse_covariance", "graph_lasso", "plot_group_figures"} <= planned


# --- config values as people type them ------------------------------------------


@pytest.mark.parametrize("low_pass", ["0.005", "0.01"])
def test_low_pass_not_above_high_pass(run_snakemake, workdir: Path, low_pass) -> None:
    config = write_config(workdir, n_subjects=2)
    result = dry_run(run_snakemake, workdir, config, "--config", f"low_pass={low_pass}")
    assert error_line(result) == (
        f"{ERROR_PREFIX}{config}, --config: low_pass {float(low_pass):g} Hz must be "
        "above high_pass 0.01 Hz (the Butterworth filter keeps the band between "
        "them); set low_pass: null for no low-pass filter"
    )


def test_results_dir_that_is_a_file(run_snakemake, workdir: Path) -> None:
    (workdir / "out").write_text("a file where the results would go\n")
    config = write_config(workdir, n_subjects=2)
    result = dry_run(run_snakemake, workdir, config, "--config", "results_dir=out")
    assert error_line(result) == (
        f"{ERROR_PREFIX}{config}, --config: results_dir 'out' is an existing file, "
        "not a folder; set results_dir to a folder"
    )
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr


def _plot_sheet(workdir: Path) -> Path:
    config, _ = sheet_config(
        workdir,
        "subject\tfunc",
        "01\tdata/a_bold.nii.gz",
        "1\tdata/b_bold.nii.gz",
        "2\tdata/b_bold.nii.gz",
    )
    return config


def test_plot_subject_number_matching_two_subjects(run_snakemake, workdir) -> None:
    # --config plot_subject=01 reaches the workflow as the number 1
    config = _plot_sheet(workdir)
    result = dry_run(run_snakemake, workdir, config, "--config", "plot_subject=01")
    assert error_line(result) == (
        f"{ERROR_PREFIX}{config}, --config: plot_subject 1 matches '01' and '1': "
        "--config reads 01 as the number 1; write the label with its prefix, e.g. "
        "--config plot_subject=sub-01, or as text in a config file (plot_subject: "
        '"01")'
    )


@pytest.mark.parametrize(("typed", "plotted"), [("sub-01", "01"), ("sub-1", "1")])
def test_plot_subject_as_typed(run_snakemake, workdir, typed, plotted) -> None:
    config = _plot_sheet(workdir)
    result = dry_run(
        run_snakemake, workdir, config, "--config", f"plot_subject={typed}"
    )
    assert result.returncode == 0, result.stderr
    plotted_figures = set(
        re.findall(
            r"sub-([A-Za-z0-9]+)_atlas-custom_desc-graphlasso_connectome", result.stdout
        )
    )
    assert plotted_figures == {plotted}


@pytest.mark.parametrize("typed", ["false", "no"])
def test_boolean_typed_on_the_command_line(run_snakemake, workdir, typed) -> None:
    config = write_config(workdir, n_subjects=2)
    result = dry_run(
        run_snakemake,
        workdir,
        config,
        "--quiet",
        "rules",
        "--config",
        f"science_check={typed}",
    )
    assert result.returncode == 0, result.stderr
    planned = set(job_counts(result.stdout))
    assert "group_sparse_covariance" in planned
    assert not planned & SCIENCE_RULES


@pytest.mark.parametrize(
    ("stability", "message"),
    [
        (
            {"enabled": True, "threshold": 0.5},
            "stability.threshold: 0.5 is less than or equal to the minimum of 0.5",
        ),
        (
            {"enabled": True, "n_resamples": 8},
            "stability.n_resamples: 8 is less than the minimum of 10",
        ),
        (
            {"enabled": True, "scheme": "subjects"},
            "stability.scheme subjects: stability selection of the group-sparse "
            "model needs at least 4 group elements, the run has 3",
        ),
        (
            {"enabled": True, "n_blocks": 46},
            "stability.n_blocks 46: too few volumes per half: 88 volumes per subject",
        ),
    ],
)
def test_bad_stability_settings(run_snakemake, workdir: Path, stability, message):
    config = write_config(workdir, n_subjects=3, stability=stability)
    line = error_line(dry_run(run_snakemake, workdir, config))
    assert line.startswith(f"{ERROR_PREFIX}{config}: {message}")
