"""The code base is lint-clean: ruff, ruff format, snakefmt and snakemake --lint."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        # From the root with no flags, as a user (and the catalog) runs them; the
        # root Snakefile uses workflow/Snakefile as a module, whose rules are linted.
        ["snakefmt", "--check", "."],
        ["snakemake", "--lint"],
    ],
    ids=["ruff-check", "ruff-format", "snakefmt", "snakemake-lint"],
)
def test_linter_is_clean(command):
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


RULE_FILES = [
    *sorted((ROOT / "workflow" / "rules").glob("*.smk")),
    ROOT / "workflow" / "Snakefile",
    ROOT / "Snakefile",
]


def test_rules_only_wire():
    """common.smk stays small; no function of a .smk file writes a global."""
    assert len((ROOT / "workflow/rules/common.smk").read_text().splitlines()) <= 150
    for path in RULE_FILES:
        body = None
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.startswith("def "):
                body = line
            elif line and not line[0].isspace():
                body = None
            elif body is not None:
                code = line.split("#", 1)[0]
                assert "global " not in code, f"{path.name}:{number}: {line}"
                # an upper-case (module-level) name assigned or filled in a function
                assert not re.search(r"\b[A-Z][A-Z0-9_]+(\[[^]]*\])?\s*=[^=]", code), (
                    f"{path.name}:{number}: {line}"
                )
                assert not re.search(
                    r"\b[A-Z][A-Z0-9_]+\.(append|update|setdefault)\(", code
                ), f"{path.name}:{number}: {line}"


def _rule_blocks() -> dict[str, str]:
    """Each rule's text, by name, from every .smk file."""
    blocks = {}
    for path in RULE_FILES:
        parts = re.split(r"^rule (\w+):\n", path.read_text(), flags=re.M)
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            blocks[name] = re.split(r"^\S", body, maxsplit=1, flags=re.M)[0]
    return blocks


def test_every_caption_reads_params_its_rules_have():
    """A caption's {{ snakemake.params.x }} renders empty when its rule lacks x."""
    checked = 0
    for name, body in _rule_blocks().items():
        params = body.split("    params:\n", 1)
        declared = (
            set(re.findall(r"^        (\w+)=", params[1], flags=re.M))
            if (len(params) == 2)
            else set()
        )
        for caption in re.findall(r'caption="\.\./report/([\w.]+)"', body):
            text = (ROOT / "workflow" / "report" / caption).read_text()
            for param in re.findall(r"snakemake\.params\.(\w+)", text):
                checked += 1
                assert param in declared, f"rule {name}: {caption} reads {param}"
    assert checked
