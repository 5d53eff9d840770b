"""Subjects sheet, repetition time and config keys (sparseconn.subjects)."""

from __future__ import annotations

import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from sparseconn.errors import InputError
from sparseconn.subjects import (
    Subject,
    check_config_keys,
    match_label,
    read_subjects_sheet,
    resolve_repetition_time,
    resolve_t_r,
    resolve_t_r_with_source,
)

HEADER = "subject\tfunc\tconfounds\tt_r\texclude"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A folder with a few (empty) image and confounds files."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("a.nii.gz", "b.nii.gz", "c.nii.gz", "a.tsv", "b.tsv"):
        (folder / name).write_bytes(b"")
    return folder


def write_sheet(folder: Path, *lines: str, name: str = "subjects.tsv") -> Path:
    path = folder / name
    path.write_text("".join(line + "\n" for line in lines))
    return path


def assert_one_line_error(error: pytest.ExceptionInfo[InputError], path: Path) -> str:
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


# --- reading a valid sheet ---------------------------------------------------


def test_reads_sorted_rows_with_resolved_paths(tmp_path: Path, data_dir: Path) -> None:
    sheet = write_sheet(
        tmp_path,
        HEADER,
        "02\tdata/b.nii.gz\tdata/b.tsv\t2.0\tno",
        "01\tdata/a.nii.gz\tdata/a.tsv\t\t",
        f"10\t{data_dir / 'c.nii.gz'}\t\t2.5\tYES",
    )
    rows = read_subjects_sheet(sheet)
    assert [row.subject for row in rows] == ["01", "02", "10"]
    assert rows[0] == Subject(
        subject="01",
        func=str(data_dir / "a.nii.gz"),
        confounds=str(data_dir / "a.tsv"),
        t_r=None,
        exclude=False,
    )
    assert rows[1].t_r == 2.0
    assert rows[1].exclude is False
    assert rows[2].func == str(data_dir / "c.nii.gz")  # absolute path kept
    assert rows[2].confounds is None
    assert rows[2].exclude is True


def test_leading_zeros_kept(tmp_path: Path, data_dir: Path) -> None:
    sheet = write_sheet(
        tmp_path,
        "subject\tfunc",
        "007\tdata/a.nii.gz",
        "7\tdata/b.nii.gz",
        "0010\tdata/c.nii.gz",
    )
    assert [row.subject for row in read_subjects_sheet(sheet)] == ["0010", "007", "7"]


def test_row_order_changes_nothing(tmp_path: Path, data_dir: Path) -> None:
    rows = [
        "03\tdata/c.nii.gz\t\t\t",
        "01\tdata/a.nii.gz\tdata/a.tsv\t2.5\t0",
        "02\tdata/b.nii.gz\tdata/b.tsv\t\t1",
    ]
    first = read_subjects_sheet(write_sheet(tmp_path, HEADER, *rows, name="x.tsv"))
    second = read_subjects_sheet(
        write_sheet(tmp_path, HEADER, *reversed(rows), name="y.tsv")
    )
    assert first == second


def test_optional_columns_and_extra_columns(tmp_path: Path, data_dir: Path) -> None:
    sheet = write_sheet(
        tmp_path, "age\tfunc\tsubject\tgroup", "31\tdata/a.nii.gz\tA1\tcontrol"
    )
    assert read_subjects_sheet(sheet) == [
        Subject(subject="A1", func=str(data_dir / "a.nii.gz"))
    ]


def test_relative_sheet_path_gives_relative_paths(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    write_sheet(config, "subject\tfunc", "01\t../data/a.nii.gz")
    monkeypatch.chdir(tmp_path)
    (row,) = read_subjects_sheet("config/subjects.tsv")
    assert row.func == os.path.join("data", "a.nii.gz")


def test_urls_kept_as_given(tmp_path: Path) -> None:
    urls = [
        "https://example.org/sub-01_bold.nii.gz",
        "http://example.org/sub-02_bold.nii.gz",
        "file:///somewhere/sub-03_bold.nii.gz",
    ]
    sheet = write_sheet(
        tmp_path,
        "subject\tfunc\tconfounds",
        f"01\t{urls[0]}\thttps://example.org/c.tsv",
        f"02\t{urls[1]}\t",
        f"03\t{urls[2]}\t",
    )
    rows = read_subjects_sheet(sheet)
    assert [row.func for row in rows] == urls
    assert rows[0].confounds == "https://example.org/c.tsv"


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("", False),
        ("false", False),
        ("No", False),
        ("0", False),
        ("TRUE", True),
        ("yes", True),
        ("1", True),
    ],
)
def test_exclude_values(tmp_path: Path, data_dir: Path, cell: str, expected: bool):
    sheet = write_sheet(
        tmp_path, "subject\tfunc\texclude", f"01\tdata/a.nii.gz\t{cell}"
    )
    assert read_subjects_sheet(sheet)[0].exclude is expected


def test_blank_lines_and_short_rows(tmp_path: Path, data_dir: Path) -> None:
    sheet = write_sheet(tmp_path, HEADER, "", "01\tdata/a.nii.gz", "")
    assert read_subjects_sheet(sheet) == [
        Subject(subject="01", func=str(data_dir / "a.nii.gz"))
    ]


# --- sheet errors ------------------------------------------------------------


def test_missing_sheet(tmp_path: Path) -> None:
    path = tmp_path / "nope.tsv"
    with pytest.raises(InputError, match="not found") as error:
        read_subjects_sheet(path)
    assert_one_line_error(error, path)


@pytest.mark.parametrize("content", ["", "\n\n", "  \t \n"])
def test_empty_sheet(tmp_path: Path, content: str) -> None:
    path = tmp_path / "subjects.tsv"
    path.write_text(content)
    with pytest.raises(InputError, match="empty subjects sheet") as error:
        read_subjects_sheet(path)
    assert_one_line_error(error, path)


def test_header_only(tmp_path: Path) -> None:
    path = write_sheet(tmp_path, HEADER)
    with pytest.raises(InputError, match="no subjects") as error:
        read_subjects_sheet(path)
    assert_one_line_error(error, path)


@pytest.mark.parametrize("column", ["subject", "func"])
def test_missing_required_column(tmp_path: Path, data_dir: Path, column: str) -> None:
    header = HEADER.replace(column, "other")
    path = write_sheet(tmp_path, header, "01\tdata/a.nii.gz\t\t\t")
    with pytest.raises(InputError) as error:
        read_subjects_sheet(path)
    message = assert_one_line_error(error, path)
    assert f"missing required column '{column}'" in message
    assert "'other'" in message  # the columns found are listed


def test_comma_separated_sheet_hint(tmp_path: Path, data_dir: Path) -> None:
    path = write_sheet(tmp_path, "subject,func", "01,data/a.nii.gz")
    with pytest.raises(InputError, match="tab-separated") as error:
        read_subjects_sheet(path)
    assert_one_line_error(error, path)


def test_duplicate_column(tmp_path: Path, data_dir: Path) -> None:
    path = write_sheet(tmp_path, "subject\tfunc\tfunc", "01\tdata/a.nii.gz\tx")
    with pytest.raises(InputError, match="column 'func' appears more than once"):
        read_subjects_sheet(path)


def test_too_many_cells(tmp_path: Path, data_dir: Path) -> None:
    path = write_sheet(tmp_path, "subject\tfunc", "01\tdata/a.nii.gz\textra")
    with pytest.raises(InputError, match="line 2 has 3 cells") as error:
        read_subjects_sheet(path)
    assert_one_line_error(error, path)


def test_duplicate_subject(tmp_path: Path, data_dir: Path) -> None:
    path = write_sheet(
        tmp_path,
        "subject\tfunc",
        "01\tdata/a.nii.gz",
        "02\tdata/b.nii.gz",
        "01\tdata/c.nii.gz",
    )
    with pytest.raises(InputError) as error:
        read_subjects_sheet(path)
    message = assert_one_line_error(error, path)
    assert "duplicate subject '01' (lines 2 and 4)" in message


def test_subjects_differing_only_in_case(tmp_path: Path, data_dir: Path) -> None:
    path = write_sheet(
        tmp_path, "subject\tfunc", "ab1\tdata/a.nii.gz", "AB1\tdata/b.nii.gz"
    )
    with pytest.raises(InputError, match="differ only in case"):
        read_subjects_sheet(path)


@pytest.mark.parametrize(
    "subject",
    ["a/b", "..", "a b", " 01", "01 ", "a-b", "a_b", "a.b", "a\\b", "é1"],
)
def test_invalid_subject_id(tmp_path: Path, data_dir: Path, subject: str) -> None:
    path = write_sheet(tmp_path, "subject\tfunc", f"{subject}\tdata/a.nii.gz")
    with pytest.raises(InputError) as error:
        read_subjects_sheet(path)
    message = assert_one_line_error(error, path)
    assert f"invalid subject id {subject!r}" in message
    assert "letters and digits only, as in BIDS labels" in message
    assert "line 2" in message


def test_subject_id_with_sub_prefix_hint(tmp_path: Path, data_dir: Path) -> None:
    path = write_sheet(tmp_path, "subject\tfunc", "sub-01\tdata/a.nii.gz")
    with pytest.raises(InputError, match="write '01', without the 'sub-' prefix"):
        read_subjects_sheet(path)


def test_empty_subject(tmp_path: Path, data_dir: Path) -> None:
    path = write_sheet(tmp_path, "subject\tfunc", "\tdata/a.nii.gz")
    with pytest.raises(InputError, match="line 2: empty subject id"):
        read_subjects_sheet(path)


def test_empty_func(tmp_path: Path) -> None:
    path = write_sheet(tmp_path, "subject\tfunc\tt_r", "01\t\t2")
    with pytest.raises(InputError, match=r"subject '01'\): empty func cell"):
        read_subjects_sheet(path)


@pytest.mark.parametrize("column", ["func", "confounds"])
def test_missing_local_file(tmp_path: Path, data_dir: Path, column: str) -> None:
    cells = {"func": "data/a.nii.gz", "confounds": "data/a.tsv"}
    cells[column] = "data/missing.nii.gz"
    path = write_sheet(
        tmp_path,
        "subject\tfunc\tconfounds",
        f"01\t{cells['func']}\t{cells['confounds']}",
    )
    with pytest.raises(InputError) as error:
        read_subjects_sheet(path)
    message = assert_one_line_error(error, path)
    missing = str(data_dir / "missing.nii.gz")
    assert f"{column} file {missing!r} does not exist" in message


def test_func_is_a_folder(tmp_path: Path, data_dir: Path) -> None:
    path = write_sheet(tmp_path, "subject\tfunc", "01\tdata")
    with pytest.raises(InputError, match="is not a file"):
        read_subjects_sheet(path)


def test_unsupported_url_scheme(tmp_path: Path) -> None:
    path = write_sheet(tmp_path, "subject\tfunc", "01\ts3://bucket/a.nii.gz")
    with pytest.raises(InputError, match=r"unsupported URL 's3://bucket/a\.nii\.gz'"):
        read_subjects_sheet(path)


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("2.5s", "is not a number"),
        ("two", "is not a number"),
        ("0", "must be a positive number"),
        ("-2", "must be a positive number"),
        ("nan", "must be a positive number"),
        ("inf", "must be a positive number"),
    ],
)
def test_bad_t_r(tmp_path: Path, data_dir: Path, cell: str, problem: str) -> None:
    path = write_sheet(tmp_path, "subject\tfunc\tt_r", f"01\tdata/a.nii.gz\t{cell}")
    with pytest.raises(InputError) as error:
        read_subjects_sheet(path)
    message = assert_one_line_error(error, path)
    assert f"t_r {cell!r} {problem}" in message


def test_bad_exclude(tmp_path: Path, data_dir: Path) -> None:
    path = write_sheet(tmp_path, "subject\tfunc\texclude", "01\tdata/a.nii.gz\tmaybe")
    with pytest.raises(InputError, match="exclude 'maybe' is not one of"):
        read_subjects_sheet(path)


# --- repetition time ---------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "sheet", "config", "expected"),
    [
        (2.5, None, None, 2.5),  # header only
        (2.5, 2.5, None, 2.5),  # sheet agrees
        (2.5, None, 2.5, 2.5),  # config agrees
        (2.5, 2.5, 2.0, 2.5),  # the sheet wins; the config is not checked
        (2.0, 2.001, None, 2.001),  # within the tolerance (relative 5e-4)
        (None, 2.0, None, 2.0),  # no header value
        (0.0, None, 2.0, 2.0),  # header says 0: unknown
        (1.0, None, None, 1.0),
    ],
)
def test_resolve_t_r(header, sheet, config, expected) -> None:
    assert resolve_t_r("f.nii.gz", header, sheet, config) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("sheet", "config", "origin"),
    [(2.0, None, "the subjects sheet"), (None, 2.0, "the config")],
)
def test_resolve_t_r_disagreement(sheet, config, origin) -> None:
    with pytest.raises(InputError) as error:
        resolve_t_r("data/f.nii.gz", 2.5, sheet, config)
    message = str(error.value)
    assert message.startswith("data/f.nii.gz: ")
    assert "2 s" in message
    assert "2.5 s in the NIfTI header" in message
    assert origin in message


def test_resolve_t_r_unknown() -> None:
    with pytest.raises(InputError, match=r"f\.nii\.gz: no repetition time"):
        resolve_t_r("f.nii.gz", None)
    with pytest.raises(InputError, match="no repetition time"):
        resolve_t_r("f.nii.gz", 0.0, None, None)


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan")])
def test_resolve_t_r_bad_value(value: float) -> None:
    with pytest.raises(InputError, match="must be a positive number"):
        resolve_t_r("f.nii.gz", None, value)


@pytest.mark.parametrize(
    ("sheet", "config", "origin"),
    [(2.0, None, "subjects sheet (t_r)"), (None, 2.0, "config (t_r)")],
)
def test_explicit_t_r_wins_over_a_header_without_time_unit(
    caplog, sheet, config, origin
) -> None:
    # nibabel's default header: pixdim[4] 1.0, time unit unknown (no TR stated)
    with caplog.at_level("INFO", logger="sparseconn"):
        t_r, source = resolve_t_r_with_source(
            "data/f.nii.gz", None, sheet, config, unitless_header_t_r=1.0
        )
    assert t_r == 2.0
    assert source == (
        f"{origin}; the NIfTI header's pixdim[4] 1 was ignored: its time unit is "
        "unknown"
    )
    [record] = caplog.records
    assert record.levelname == "WARNING"
    assert "data/f.nii.gz" in record.getMessage()
    assert "pixdim[4] 1 is ignored" in record.getMessage()


def test_header_stating_its_unit_still_wins_disagreements() -> None:
    # a unit-less pixdim[4] is only passed when the header states no unit
    with pytest.raises(InputError, match=r"disagrees with 2\.5 s in the NIfTI header"):
        resolve_t_r("f.nii.gz", 2.5, 2.0)
    assert resolve_t_r_with_source("f.nii.gz", 2.5) == (2.5, "NIfTI header")


def test_header_without_time_unit_and_no_explicit_t_r_is_an_error() -> None:
    with pytest.raises(InputError) as error:
        resolve_t_r("data/f.nii.gz", None, None, None, unitless_header_t_r=1.0)
    assert str(error.value) == (
        "data/f.nii.gz: no repetition time: the NIfTI header does not state its "
        "time unit (xyzt_units), so its pixdim[4] 1 is not a repetition time; "
        "give t_r in the subjects sheet (column t_r) or in the config (t_r)"
    )


def test_repetition_time_sources_in_order() -> None:
    given = [(None, "config (t_r)"), (2.0, "BOLD JSON sidecar"), (3.0, "other")]
    assert resolve_repetition_time("f", None, given) == (2.0, "BOLD JSON sidecar")
    with pytest.raises(InputError, match=r"f: no repetition time.*; set it here"):
        resolve_repetition_time("f", None, [(None, "x")], hint="set it here")


# --- labels typed in the config ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "labels", "expected"),
    [
        ("01", ["01", "1", "2"], "01"),  # text: exactly that label
        ("sub-01", ["01", "1"], "01"),
        ("1", ["01", "2"], None),  # text "1" is not the label "01"
        (2, ["01", "02"], "02"),  # --config key=02 arrives as 2
        (7, ["007", "A7"], "007"),
        (3, ["01", "02"], None),
        ("A7", ["A7"], "A7"),
    ],
)
def test_match_label(value, labels, expected) -> None:
    assert match_label(value, labels, "plot_subject", "config.yaml") == expected


def test_number_matching_two_labels_is_an_error_naming_both() -> None:
    with pytest.raises(InputError) as error:
        match_label(1, ["2", "1", "01"], "plot_subject", "config.yaml")
    assert str(error.value) == (
        "config.yaml: plot_subject 1 matches '01' and '1': --config reads 01 as the "
        "number 1; write the label with its prefix, e.g. --config "
        'plot_subject=sub-01, or as text in a config file (plot_subject: "01")'
    )


# --- config keys -------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {
        "dataset": {"type": "string"},
        "n_subjects": {"type": "integer"},
        "extraction": {
            "type": "object",
            "properties": {"high_pass": {}, "low_pass": {}},
        },
    },
}


def test_known_keys_pass() -> None:
    check_config_keys(
        {"dataset": "x", "extraction": {"high_pass": 0.01}, "n_subjects": 3}, SCHEMA
    )


def test_unknown_key_with_suggestion() -> None:
    with pytest.raises(InputError) as error:
        check_config_keys({"n_subject": 3}, SCHEMA, source="my.yaml")
    assert str(error.value) == (
        "my.yaml: unknown key 'n_subject'; did you mean 'n_subjects'? "
        "(known keys: dataset, extraction, n_subjects)"
    )


def test_unknown_key_without_suggestion() -> None:
    with pytest.raises(InputError) as error:
        check_config_keys({"xyz": 1}, SCHEMA)
    assert str(error.value) == (
        "config: unknown key 'xyz' (known keys: dataset, extraction, n_subjects)"
    )


def test_unknown_nested_key() -> None:
    with pytest.raises(InputError) as error:
        check_config_keys({"extraction": {"hihg_pass": 0.1}}, SCHEMA)
    assert "unknown key 'extraction.hihg_pass'" in str(error.value)
    assert "did you mean 'extraction.high_pass'?" in str(error.value)
    assert "(known keys of extraction: high_pass, low_pass)" in str(error.value)


def test_several_unknown_keys_in_one_line() -> None:
    with pytest.raises(InputError) as error:
        check_config_keys({"b": 1, "a": 2, "dataset": "x"}, SCHEMA)
    message = str(error.value)
    assert "\n" not in message
    assert message.index("'a'") < message.index("'b'")


# --- the shipped config and schemas ------------------------------------------


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def schema_leaves(schema: dict, prefix: str = ""):
    for key, sub in schema["properties"].items():
        yield f"{prefix}{key}", sub
        if "properties" in sub:
            yield from schema_leaves(sub, f"{prefix}{key}.")


def test_shipped_config_matches_schema(repo_root: Path) -> None:
    schema = load_yaml(repo_root / "workflow/schemas/config.schema.yaml")
    config = load_yaml(repo_root / "config/config.yaml")
    check_config_keys(config, schema)
    jsonschema.Draft202012Validator(schema).validate(config)
    # Every key is in the shipped config, with the schema's default.
    for name, sub in schema_leaves(schema):
        value = config
        for part in name.split("."):
            assert part in value, f"config/config.yaml lacks {name}"
            value = value[part]
        if "properties" not in sub:
            assert value == sub["default"], name


@pytest.mark.parametrize("name", ["config", "subjects"])
def test_schemas_describe_every_key(repo_root: Path, name: str) -> None:
    schema = load_yaml(repo_root / f"workflow/schemas/{name}.schema.yaml")
    jsonschema.Draft202012Validator.check_schema(schema)
    for key, sub in schema_leaves(schema):
        assert sub.get("description"), key
        assert "type" in sub, key
        if key not in schema.get("required", []):
            assert "default" in sub, key
        types = sub["type"] if isinstance(sub["type"], list) else [sub["type"]]
        if {"number", "integer"} & set(types):
            assert {"minimum", "exclusiveMinimum"} & set(sub), key
            assert "maximum" in sub, key


def test_config_schema_rejects_unknown_keys(repo_root: Path) -> None:
    schema = load_yaml(repo_root / "workflow/schemas/config.schema.yaml")
    assert schema["additionalProperties"] is False
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({"n_subject": 2})
