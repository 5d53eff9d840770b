"""The Snakemake workflow catalog's "standardized usage" files are complete.

The catalog reads ``.snakemake-workflow-catalog.yml`` (how to run the workflow),
renders ``config/README.md`` and deploys ``workflow/Snakefile`` as a module; its
CI runs the ``.test`` configs (run for real in tests/workflow/test_deployment.py).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import jsonschema
import yaml

from sparseconn.subjects import check_config_keys

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())


def _schema_keys(schema: dict, prefix: str = ""):
    """Every config key, nested ones as ``parent.key``."""
    for key, sub in schema["properties"].items():
        if "properties" in sub:
            yield from _schema_keys(sub, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _readme_commands() -> list[str]:
    """What follows ``snakemake`` on each README line (code blocks and inline)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    return [
        " ".join(line.split("snakemake ", 1)[1].split())
        for line in lines
        if "snakemake " in line
    ]


def test_catalog_yaml_declares_the_standardized_usage():
    catalog = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())
    usage = catalog["usage"]
    assert set(usage) == {"mandatory-flags", "software-stack-deployment", "report"}
    assert usage["mandatory-flags"]["desc"].strip()
    deployment = usage["software-stack-deployment"]
    assert set(deployment) <= {"conda", "apptainer", "apptainer+conda"}
    assert any(deployment.values())
    assert usage["report"] is True


def test_catalog_flags_are_those_the_readme_uses():
    catalog = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())
    flags = shlex.split(catalog["usage"]["mandatory-flags"]["flags"])
    assert flags
    assert any(" ".join(flags) in command for command in _readme_commands()), flags


def test_the_main_workflow_is_where_the_catalog_looks():
    assert (ROOT / "workflow" / "Snakefile").is_file()
    # The root Snakefile only uses it, so that `snakemake` at the root still works.
    root = (ROOT / "Snakefile").read_text()
    assert '"workflow/Snakefile"' in root
    assert not re.search(r"^rule ", root, re.MULTILINE)


def test_config_readme_names_every_key():
    readme = (ROOT / "config" / "README.md").read_text()
    missing = [key for key in _schema_keys(SCHEMA) if f"`{key}`" not in readme]
    assert not missing, f"config/README.md lacks {missing}"


def test_test_configs_are_valid_configs():
    folder = ROOT / ".test" / "config"
    base = yaml.safe_load((folder / "config.yaml").read_text())
    for path in sorted(folder.glob("*.yaml")):
        config = {**base, **yaml.safe_load(path.read_text())}
        check_config_keys(config, SCHEMA, source=str(path))
        jsonschema.Draft202012Validator(SCHEMA).validate(config)
    assert base["dataset"] == "synthetic"
    assert base["n_subjects"] <= 3
