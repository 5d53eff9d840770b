"""Config values as typed, and checks across keys (sparseconn.configuration)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sparseconn.configuration import (
    check_atlas_space,
    check_config,
    check_filter_band,
    check_output_folder,
    read_typed_values,
)
from sparseconn.errors import InputError


@pytest.fixture(scope="module")
def schema(repo_root: Path) -> dict:
    return yaml.safe_load(
        (repo_root / "workflow/schemas/config.schema.yaml").read_text()
    )


# --- values typed on the command line ------------------------------------------


@pytest.mark.parametrize(
    ("key", "typed", "expected"),
    [
        # what `snakemake --config key=value` hands over -> what the key means
        ("concatenate_runs", "false", False),
        ("concatenate_runs", "no", False),
        ("concatenate_runs", "TRUE", True),
        ("concatenate_runs", 0, False),
        ("science_check", "off", False),
        ("low_pass", "null", None),
        ("t_r", "~", None),
        ("denoise_strategy", "null", None),
        ("plot_subject", "null", None),
        ("participant_label", 2, [2]),  # 02 arrives as 2: matched later
        ("participant_label", "01,02", ["01", "02"]),
        ("participant_label", "sub-01", ["sub-01"]),
        ("participant_label", ["01", "02"], ["01", "02"]),  # [01,02]
        ("confound_columns", "trans_x, rot_z", ["trans_x", "rot_z"]),
        ("session", "ses-2", "ses-2"),  # text the schema accepts stays text
        ("session", 2, 2),
        ("plot_subject", "01", "01"),
        ("atlas_name", "MSDL", "MSDL"),
        ("denoise_strategy", "scrubbing", "scrubbing"),
        ("min_volumes", "50%", "50%"),
        ("n_subjects", 3, 3),
        ("high_pass", 0.02, 0.02),
    ],
)
def test_command_line_values_take_the_schema_type(schema, key, typed, expected):
    config = {key: typed}
    read_typed_values(config, schema)
    assert config == {key: expected}
    assert type(config[key]) is type(expected)


def test_nested_values_are_typed(schema):
    # --config figures={dpi: 150, svg: false}: YAML's base loader gives text
    config = {"figures": {"dpi": "150", "svg": "false", "edge_threshold": "80%"}}
    read_typed_values(config, schema)
    assert config == {"figures": {"dpi": 150, "svg": False, "edge_threshold": "80%"}}


@pytest.mark.parametrize(
    ("key", "typed"),
    [("concatenate_runs", "maybe"), ("n_subjects", "ten"), ("unknown_key", "x")],
)
def test_unreadable_values_are_left_for_the_schema(schema, key, typed):
    config = {key: typed}
    read_typed_values(config, schema)
    assert config == {key: typed}


# --- checks across keys -----------------------------------------------------------


@pytest.mark.parametrize(("high", "low"), [(0.01, 0.005), (0.01, 0.01), (0.1, 0.08)])
def test_low_pass_not_above_high_pass_is_an_error(high, low):
    with pytest.raises(InputError) as error:
        check_filter_band(high, low, "config.yaml")
    message = str(error.value)
    assert message.startswith("config.yaml: low_pass ")
    assert f"must be above high_pass {high:g} Hz" in message


@pytest.mark.parametrize(("high", "low"), [(0.01, 0.1), (None, 0.1), (0.01, None)])
def test_valid_filter_bands_pass(high, low):
    check_filter_band(high, low, "config.yaml")


def test_results_dir_that_is_a_file_is_an_error(tmp_path):
    existing = tmp_path / "results"
    existing.write_text("not a folder")
    with pytest.raises(InputError) as error:
        check_output_folder(str(existing), "results_dir", "config.yaml")
    assert str(error.value) == (
        f"config.yaml: results_dir {str(existing)!r} is an existing file, not a "
        "folder; set results_dir to a folder"
    )
    with pytest.raises(InputError, match=r"is under .*which is an existing file"):
        check_output_folder(str(existing / "sub"), "results_dir", "config.yaml")


def test_output_folders_that_exist_or_can_be_made_pass(tmp_path):
    check_output_folder(str(tmp_path), "results_dir", "c")
    check_output_folder(str(tmp_path / "new" / "deeper"), "results_dir", "c")


def test_check_config_names_the_key(tmp_path):
    (tmp_path / "res").write_text("")
    config = {
        "high_pass": 0.01,
        "low_pass": None,
        "results_dir": str(tmp_path / "out"),
        "resources_dir": str(tmp_path / "res"),
    }
    with pytest.raises(InputError, match=r"c\.yaml: resources_dir "):
        check_config(config, "c.yaml")


# --- atlas space vs the runs' space ------------------------------------------------


@pytest.mark.parametrize(
    ("space", "atlas_space", "own_atlas"),
    [
        ("MNI152NLin2009cAsym", None, True),
        ("MNI152NLin6Asym", None, False),  # MSDL on FSL's MNI152
        ("MNI152NLin2009cAsym", "MNI152NLin6Asym", True),
        ("MNI152Lin", "MNI152", True),
        ("T1w", "T1w", True),  # the user says the atlas is in the runs' space
        ("MNIPediatricAsym", "MNIPediatricAsym", True),
    ],
)
def test_matching_spaces_pass(space, atlas_space, own_atlas):
    check_atlas_space(space, atlas_space, own_atlas=own_atlas, source="c.yaml")


@pytest.mark.parametrize(
    ("space", "atlas_space", "own_atlas", "expected"),
    [
        ("T1w", None, True, "atlas_maps is taken to be in MNI152 space"),
        ("T1w", None, False, "the MSDL atlas is in MNI152 space"),
        ("func", None, True, "runs are in space func"),
        ("boldref", "MNI152NLin2009cAsym", True, "MNI152NLin2009cAsym space"),
        ("MNIPediatricAsym", None, True, "runs are in space MNIPediatricAsym"),
        ("MNI152NLin2009cAsym", "T1w", True, "atlas_maps is in T1w space"),
        ("T1w", "T1w", False, "the MSDL atlas (downloaded when atlas_maps"),
    ],
)
def test_template_atlas_on_other_space_is_an_error(
    space, atlas_space, own_atlas, expected
):
    with pytest.raises(InputError) as error:
        check_atlas_space(space, atlas_space, own_atlas=own_atlas, source="c.yaml")
    message = str(error.value)
    assert message.startswith("c.yaml: ") and expected in message
    assert "atlas_space" in message


# ---------------------------------------------------------------- stability


STABILITY = {"scheme": "time", "n_blocks": 8}


@pytest.mark.parametrize(
    ("settings", "n_units", "key"),
    [
        ({"scheme": "time", "n_blocks": 8}, 1, "stability.scheme time"),
        ({"scheme": "subjects", "n_blocks": 8}, 3, "stability.scheme subjects"),
    ],
)
def test_stability_needs_enough_group_elements(settings, n_units, key):
    from sparseconn.configuration import check_stability

    with pytest.raises(InputError) as error:
        check_stability(settings, n_units, "config.yaml")
    assert str(error.value).startswith(f"config.yaml: {key}: ")
    assert f"the run has {n_units}" in str(error.value)


def test_stability_needs_two_volumes_a_block_in_the_training_parts():
    from sparseconn.configuration import check_stability

    # 40 volumes, 2 held-out folds: training parts of 20 volumes < 2 x 16 blocks
    check_stability(STABILITY, 4, "c", n_volumes=40, heldout_folds=None)
    with pytest.raises(InputError, match=r"^c: stability.n_blocks 16: too few"):
        check_stability(
            {"scheme": "time", "n_blocks": 16}, 4, "c", n_volumes=40, heldout_folds=2
        )
    with pytest.raises(InputError, match=r"use stability\.n_blocks 8 or fewer"):
        check_stability(
            {"scheme": "time", "n_blocks": 10}, 4, "c", n_volumes=35, heldout_folds=2
        )
    check_stability(STABILITY, 4, "c", n_volumes=33, heldout_folds=2)
    # scheme subjects takes every volume of the subjects it draws
    check_stability(
        {"scheme": "subjects", "n_blocks": 100}, 4, "c", n_volumes=10, heldout_folds=2
    )
