"""The rerun hash of each rule counts exactly the code the rule runs.

Edits are made in a temporary copy of ``src/sparseconn``; the rules are read from
``workflow/Snakefile`` and ``workflow/rules/*.smk``.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from sparseconn.workflow import adapters
from sparseconn.workflow.provenance import CodeIndex, rule_code

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "sparseconn"
RULE_FILES = [
    ROOT / "workflow" / "Snakefile",
    *sorted((ROOT / "workflow" / "rules").glob("*.smk")),
]
RULE_BLOCK = re.compile(r"^rule (\w+):\n((?:[ \t]+\S.*\n|\n)*)", re.MULTILINE)


def rule_blocks() -> dict[str, tuple[Path, str]]:
    """Each rule of the workflow (but ``all``): its file and its text."""
    blocks = {}
    for path in RULE_FILES:
        for match in RULE_BLOCK.finditer(path.read_text()):
            blocks[match.group(1)] = (path, match.group(2))
    blocks.pop("all", None)
    return blocks


def section(block: str, name: str) -> str:
    """The text of one directive (``output``, ``params``...) of a rule."""
    match = re.search(rf"^    {name}:\n((?:        .*\n|\n)*)", block, re.MULTILINE)
    return match.group(1) if match else ""


RULES = sorted(rule_blocks())
#: Rules drawing a figure: a PNG among their outputs.
FIGURE_RULES = {
    rule
    for rule, (_, block) in rule_blocks().items()
    if ".png" in section(block, "output")
}


def test_the_rules_are_found() -> None:
    assert {"extract_timeseries", "plot_group_figures", "fetch_atlas"} <= set(RULES)
    assert {
        "plot_group_figures",
        "plot_subjects_qc",
        "model_comparison",
        "recovery_scores",
    } <= FIGURE_RULES


def test_every_rule_has_one_adapter_named_like_it_and_no_adapter_is_left() -> None:
    functions = {
        name
        for name, value in vars(adapters).items()
        if callable(value)
        and getattr(value, "__module__", "") == adapters.__name__
        and list(inspect.unwrap(value).__code__.co_varnames[:5])
        == ["input", "output", "params", "wildcards", "log"]
    }
    assert functions == set(RULES)


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_calls_its_own_adapter(rule: str) -> None:
    path, block = rule_blocks()[rule]
    run, script = section(block, "run"), section(block, "script")
    assert bool(run) != bool(script), f"{rule}: one of run: or script:"
    if run:
        assert run.strip() == (
            f"adapters.{rule}(input, output, params, wildcards, log)"
        )
        return
    shim = (path.parent / script.strip().strip('"')).resolve()
    assert shim == ROOT / "scripts" / f"{rule}.py"
    lines = [line for line in shim.read_text().splitlines() if line.strip()]
    assert len(lines) <= 3
    assert f"import {rule}" in lines[0] and lines[-1] == (
        f"run_script({rule}, snakemake)"
    )


@pytest.mark.parametrize("rule", RULES)
def test_the_code_param_is_the_hash_of_the_rule_itself(rule: str) -> None:
    path, block = rule_blocks()[rule]
    params = section(block, "params")
    if path.name == "fetch.smk":
        # downloads: the bytes come from the hosts (editing the downloader must
        # not download again)
        assert "code=" not in params
        return
    assert f'code=rule_code("{rule}"),' in params


def test_no_script_is_left_without_its_rule() -> None:
    assert {path.stem for path in (ROOT / "scripts").glob("*.py")} <= set(RULES)


# ------------------------------------------------------ edits of a copy


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A copy of ``src/sparseconn`` to edit."""
    copy = tmp_path / "sparseconn"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def hashes(package_dir: Path) -> dict[str, str]:
    index = CodeIndex(package_dir)
    return {rule: index.rule_code(rule) for rule in RULES}


def changed_by(package_dir: Path, edit: Callable[[], None]) -> set[str]:
    """The rules whose hash an edit of the copy changes."""
    before = hashes(package_dir)
    edit()
    after = hashes(package_dir)
    return {rule for rule in RULES if before[rule] != after[rule]}


def add_statement(path: Path, names: set[str] | None = None) -> None:
    """Add a statement to the top-level functions (or classes) ``names`` (all)."""
    lines = path.read_text().splitlines(keepends=True)
    tree = ast.parse("".join(lines))
    nodes = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
        and (names is None or node.name in names)
    ]
    assert nodes and (names is None or {n.name for n in nodes} == names)
    for node in sorted(nodes, key=lambda n: n.body[-1].lineno, reverse=True):
        last = node.body[-1]
        indent = " " * last.col_offset
        lines.insert(last.lineno - 1, f"{indent}_edited = 1\n")
    path.write_text("".join(lines))


def test_the_copy_hashes_as_the_package(package: Path) -> None:
    assert hashes(package) == {rule: rule_code(rule) for rule in RULES}


def test_plotting_changes_the_figure_rules_only(package: Path) -> None:
    path = package / "plotting.py"
    assert changed_by(package, lambda: add_statement(path)) == FIGURE_RULES


@pytest.mark.parametrize(
    ("function", "rule"),
    [
        ("plot_connectome", "plot_group_figures"),
        ("plot_subject_qc", "plot_subjects_qc"),
    ],
)
def test_one_plotting_function_changes_its_figure_only(
    package: Path, function: str, rule: str
) -> None:
    path = package / "plotting.py"
    edit = lambda: add_statement(path, {function})  # noqa: E731
    assert changed_by(package, edit) == {rule}


def test_covariance_changes_the_rules_that_fit_the_group_sparse_model(
    package: Path,
) -> None:
    # recovery_scores reads the group .npz and runs no covariance code: it
    # reruns through its input when group_sparse_covariance reruns.
    path = package / "covariance.py"
    assert changed_by(package, lambda: add_statement(path)) == {
        "group_sparse_covariance",
        "heldout_group_sparse",
        # stability selection refits the group-sparse model on halves
        "stability_selection",
        "heldout_stability",
    }


@pytest.mark.parametrize("rule", RULES)
def test_an_adapter_changes_its_rule_only(package: Path, rule: str) -> None:
    path = package / "workflow" / "adapters.py"
    assert changed_by(package, lambda: add_statement(path, {rule})) == {rule}


def test_the_atomic_writer_of_io_changes_every_rule(package: Path) -> None:
    # every rule writes its outputs through io.atomic_output (house rule)
    path = package / "io.py"
    edit = lambda: add_statement(path, {"atomic_output"})  # noqa: E731
    assert changed_by(package, edit) == set(RULES)


def test_the_npz_writer_of_io_changes_the_rules_writing_npz_only(
    package: Path,
) -> None:
    path = package / "io.py"
    edit = lambda: add_statement(path, {"write_npz"})  # noqa: E731
    assert changed_by(package, edit) == {
        "synthetic_atlas",  # the ground truth
        "synthetic_subject",
        "group_sparse_covariance",
        "graph_lasso",
        # one function (run_graph_lasso) serves both graph-lasso rules; only
        # graph_lasso passes it an .npz path
        "graph_lasso_subject",
        "heldout_subjects",  # the whole-series precisions of the recovery scores
        "stability_selection",
    }


def test_the_job_runner_changes_every_rule(package: Path) -> None:
    path = package / "workflow" / "jobs.py"
    edit = lambda: add_statement(path, {"run_job"})  # noqa: E731
    assert changed_by(package, edit) == set(RULES)


def test_comments_and_layout_change_no_hash(package: Path) -> None:
    def edit() -> None:
        for path in package.rglob("*.py"):
            lines = path.read_text().splitlines(keepends=True)
            edited = []
            for line in lines:
                stripped = line.rstrip("\n")
                if stripped.endswith(":") and stripped.lstrip().startswith("def "):
                    indent = len(line) - len(line.lstrip()) + 4
                    edited += [line, " " * indent + "# a new comment\n", "\n"]
                else:
                    edited.append(line)
            path.write_text("\n# a comment between definitions\n" + "".join(edited))

    assert changed_by(package, edit) == set()


def test_a_docstring_counts(package: Path) -> None:
    path = package / "workflow" / "adapters.py"
    docstring = '"""Rule ``scan_qc``."""'

    def edit() -> None:
        text = path.read_text()
        assert text.count(docstring) == 1
        path.write_text(text.replace(docstring, '"""Rule ``scan_qc``, edited."""'))

    assert changed_by(package, edit) == {"scan_qc"}


# ------------------------------------------ the mechanism, on a tiny package


def make_package(root: Path, files: dict[str, str]) -> Path:
    """A package ``sparseconn`` under ``root`` holding ``files`` (dedented)."""
    package = root / "sparseconn"
    for name, text in {"__init__.py": "", "workflow/__init__.py": "", **files}.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(textwrap.dedent(text))
    return package


TINY = {
    "workflow/adapters.py": """
        from sparseconn import steps
        from sparseconn.helpers import LIMIT as limit

        def first(input, output, params, wildcards, log):
            from sparseconn.steps import run_first
            run_first(limit)

        def second(input, output, params, wildcards, log):
            steps.run_second()

        def third(input, output, params, wildcards, log):
            shared = 1  # a local named like a package function
            return shared
    """,
    "steps.py": """
        from sparseconn import helpers

        FACTOR = 2

        def run_first(limit):
            return helpers.scale(limit) * FACTOR

        def run_second():
            return helpers.unused

        def shared():
            return 0
    """,
    "helpers.py": """
        import numpy as np

        LIMIT = 3
        SCALE = 4

        def scale(x):
            return x * SCALE

        unused = None
    """,
}


def tiny_changes(tmp_path: Path, module: str, old: str, new: str) -> set[str]:
    package = make_package(tmp_path, TINY)
    index = CodeIndex(package)
    before = {rule: index.rule_code(rule) for rule in ("first", "second", "third")}
    path = package / module
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    index = CodeIndex(package)
    after = {rule: index.rule_code(rule) for rule in ("first", "second", "third")}
    return {rule for rule in before if before[rule] != after[rule]}


@pytest.mark.parametrize(
    ("module", "old", "new", "expected"),
    [
        # a constant read through a module-level import of the adapters
        ("helpers.py", "LIMIT = 3", "LIMIT = 5", {"first"}),
        # a constant read by a function reached through an import in a body
        ("helpers.py", "SCALE = 4", "SCALE = 5", {"first"}),
        ("steps.py", "FACTOR = 2", "FACTOR = 3", {"first"}),
        # module.attribute
        ("helpers.py", "unused = None", "unused = 0", {"second"}),
        # a function no rule reaches (a local variable is named like it)
        ("steps.py", "return 0", "return 1", set()),
        # an import from outside the package is not followed
        ("helpers.py", "import numpy as np", "import numpy", set()),
        # a statement run on import counts for every user of the module
        ("steps.py", "FACTOR = 2", "FACTOR = 2\nprint()", {"first", "second"}),
    ],
)
def test_what_counts(
    tmp_path: Path, module: str, old: str, new: str, expected: set[str]
) -> None:
    assert tiny_changes(tmp_path, module, old, new) == expected


def test_a_rule_without_adapter_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="no adapter named 'fourth'"):
        CodeIndex(make_package(tmp_path, TINY)).rule_code("fourth")


def test_hashes_are_cached_for_the_exact_sources(tmp_path: Path, monkeypatch) -> None:
    from sparseconn.workflow import provenance

    monkeypatch.chdir(tmp_path)
    provenance._known_codes.cache_clear()
    try:
        real = provenance.rule_code("scan_qc")
        cached = json.loads(provenance.CACHE.read_text())
        assert cached["codes"]["scan_qc"] == real
        # a cache for these sources is believed: no module is parsed again
        cached["codes"]["scan_qc"] = "planted"
        provenance.CACHE.write_text(json.dumps(cached))
        provenance._known_codes.cache_clear()
        assert provenance.rule_code("scan_qc") == "planted"
        # a cache for other sources is not
        cached["sources"] = "0" * 64
        provenance.CACHE.write_text(json.dumps(cached))
        provenance._known_codes.cache_clear()
        assert provenance.rule_code("scan_qc") == real
        # nor a broken one
        provenance.CACHE.write_text("{not json")
        provenance._known_codes.cache_clear()
        assert provenance.rule_code("scan_qc") == real
    finally:
        provenance._known_codes.cache_clear()
