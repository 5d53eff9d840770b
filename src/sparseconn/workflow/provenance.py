"""The rerun hash of a rule: exactly the code the rule runs.

A rule's ``code`` param is :func:`rule_code`: Snakemake reruns a job when a param
changes, so editing the code a rule runs reruns its jobs, and only those. The code
a rule runs is its adapter (the function named like the rule in
:mod:`sparseconn.workflow.adapters`) and, transitively, every top-level statement
of the package that this code refers to: a function, a class or a constant, found
by name (module-level imports and imports inside function bodies are followed,
``module.name`` included). Granularity is one top-level statement, so one module
holding the functions of many rules does not tie them together. A module's
top-level statements that bind no name (e.g. ``matplotlib.use(...)``) count for
every rule using the module, and so do those of the packages above it.

What counts of a statement is its tokens: comments and layout (line breaks
inside brackets, blank lines, indentation width) do not, so that ``ruff format``
or a new comment reruns nothing; a docstring does (it is a token). Annotations
are left out (they do not run). A name the analysis cannot find in a module (a
dynamic attribute) counts as the whole module. Names bound inside a function are
local to it and not followed (a local variable named like a package function
does not tie the rule to it).
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

PACKAGE = "sparseconn"
#: The module holding one adapter per rule, named like the rule.
ADAPTERS = f"{PACKAGE}.workflow.adapters"

#: A statement: (module name, index among the module's top-level statements).
Node = tuple[str, int]
#: What an import binds: a module (its name, None) or a name in a module; an
#: import from outside the package binds None.
Target = tuple[str, str | None] | None

_SKIPPED_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING}
_LAYOUT_TOKENS = {tokenize.INDENT, tokenize.DEDENT, tokenize.NEWLINE}


@dataclass
class _Module:
    """The top-level statements of one module of the package, and its names."""

    name: str
    #: The package the module's relative imports start from.
    package: str
    statements: list[ast.stmt]
    lines: list[str]
    #: Top-level statements binding each name (def, class, assignment).
    bindings: dict[str, list[int]] = field(default_factory=dict)
    #: Module-level imports: local name -> what it binds.
    imports: dict[str, Target] = field(default_factory=dict)
    #: Statements binding no name: they run whenever the module is imported.
    effects: list[int] = field(default_factory=list)


def _statement_digest(lines: list[str], node: ast.stmt) -> str:
    """SHA-256 of a top-level statement's tokens, without comments nor layout."""
    decorators = getattr(node, "decorator_list", [])
    first = min([node.lineno, *(d.lineno for d in decorators)])
    text = "".join(lines[first - 1 : node.end_lineno or node.lineno])
    digest = hashlib.sha256()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type not in _SKIPPED_TOKENS:
            string = "" if token.type in _LAYOUT_TOKENS else token.string
            digest.update(f"{token.type}:{string}\0".encode())
    return digest.hexdigest()


def _bound_names(target: ast.expr) -> Iterator[str]:
    """Names an assignment target binds."""
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from _bound_names(element)
    elif isinstance(target, ast.Starred):
        yield from _bound_names(target.value)


def _nested_statements(node: ast.stmt) -> Iterator[ast.stmt]:
    """A compound top-level statement's statements (not inside def or class)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return
    for name in ("body", "orelse", "finalbody"):
        for child in getattr(node, name, []):
            yield child
            yield from _nested_statements(child)
    for handler in getattr(node, "handlers", []):
        for child in handler.body:
            yield child
            yield from _nested_statements(child)


class _References(ast.NodeVisitor):
    """Names a statement loads (as chains ``name.attr...``), binds and imports."""

    def __init__(self) -> None:
        self.chains: list[tuple[str, ...]] = []
        self.local: set[str] = set()
        self.imports: list[ast.Import | ast.ImportFrom] = []
        self.declared_global: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.chains.append((node.id,))
        else:
            self.local.add(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attributes = []
        value: ast.expr = node
        while isinstance(value, ast.Attribute):
            attributes.append(value.attr)
            value = value.value
        if isinstance(value, ast.Name) and isinstance(value.ctx, ast.Load):
            self.chains.append((value.id, *reversed(attributes)))
        else:
            self.visit(value)

    def _visit_arguments(self, arguments: ast.arguments) -> None:
        every = [
            *arguments.posonlyargs,
            *arguments.args,
            *arguments.kwonlyargs,
            *(a for a in (arguments.vararg, arguments.kwarg) if a is not None),
        ]
        self.local.update(argument.arg for argument in every)
        for default in [*arguments.defaults, *arguments.kw_defaults]:
            if default is not None:
                self.visit(default)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        self._visit_arguments(node.args)
        for statement in node.body:
            self.visit(statement)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._visit_function(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_arguments(node.args)
        self.visit(node.body)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.local.add(node.name)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        self.declared_global.update(node.names)

    def visit_Import(self, node: ast.Import) -> None:
        self.imports.append(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.imports.append(node)


class CodeIndex:
    """The package's code, read once, and the hash of each rule's code.

    Parameters
    ----------
    package_dir : Path
        The folder of the ``sparseconn`` package (its ``__init__.py``).
    """

    def __init__(self, package_dir: Path) -> None:
        self.package_dir = Path(package_dir)
        self._modules: dict[str, _Module | None] = {}
        self._dependencies: dict[Node, set[Node]] = {}
        self._hashes: dict[str, str] = {}
        self._digests: dict[Node, str] = {}

    # ---------------------------------------------------------------- modules

    def _file(self, module: str) -> Path | None:
        """The file of a module of the package, or None."""
        parts = module.split(".")
        if parts[0] != PACKAGE:
            return None
        base = self.package_dir.joinpath(*parts[1:])
        for path in (base / "__init__.py", base.with_suffix(".py")):
            if path.is_file():
                return path
        return None

    def module(self, name: str) -> _Module | None:
        """The parsed module ``name`` (dotted), or None outside the package."""
        if name not in self._modules:
            path = self._file(name)
            self._modules[name] = None if path is None else self._read(name, path)
        return self._modules[name]

    def _read(self, name: str, path: Path) -> _Module:
        source = path.read_text(encoding="utf-8")
        statements = ast.parse(source, filename=str(path)).body
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        module = _Module(name, package, statements, source.splitlines(keepends=True))
        for index, statement in enumerate(statements):
            names = self._statement_bindings(statement, module, package)
            for bound in names:
                module.bindings.setdefault(bound, []).append(index)
            is_docstring = (
                index == 0
                and isinstance(statement, ast.Expr)
                and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)
            )
            only_imports = all(
                isinstance(s, ast.Import | ast.ImportFrom)
                for s in [statement, *_nested_statements(statement)]
            )
            if not names and not is_docstring and not only_imports:
                module.effects.append(index)
        return module

    def _statement_bindings(
        self, statement: ast.stmt, module: _Module, package: str
    ) -> set[str]:
        """Names a top-level statement binds; its imports go to ``module``."""
        names: set[str] = set()
        for node in [statement, *_nested_statements(statement)]:
            if isinstance(node, ast.Import | ast.ImportFrom):
                module.imports.update(self._import_targets(node, package))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    names.update(_bound_names(target))
            elif isinstance(node, ast.AnnAssign | ast.AugAssign):
                names.update(_bound_names(node.target))
            elif isinstance(node, ast.For | ast.With):
                targets = (
                    [node.target]
                    if isinstance(node, ast.For)
                    else [i.optional_vars for i in node.items if i.optional_vars]
                )
                for target in targets:
                    names.update(_bound_names(target))
        return names

    def _import_targets(
        self, node: ast.Import | ast.ImportFrom, package: str
    ) -> dict[str, Target]:
        """What each name of an import statement binds."""
        targets: dict[str, Target] = {}
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    targets[alias.asname] = self._module_target(alias.name)
                else:
                    head = alias.name.split(".")[0]
                    targets[head] = self._module_target(head)
            return targets
        source = node.module or ""
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            source = ".".join([*base, *([source] if source else [])])
        for alias in node.names:
            local = alias.asname or alias.name
            if self._file(f"{source}.{alias.name}") is not None:
                targets[local] = (f"{source}.{alias.name}", None)
            elif self._file(source) is not None:
                targets[local] = (source, alias.name)
            else:
                targets[local] = None
        return targets

    def _module_target(self, name: str) -> Target:
        return (name, None) if self._file(name) is not None else None

    # ------------------------------------------------------------ resolution

    def _whole(self, name: str) -> set[Node]:
        module = self.module(name)
        if module is None:
            return set()
        return {(name, index) for index in range(len(module.statements))}

    def _follow(self, target: Target, rest: tuple[str, ...]) -> set[Node]:
        """The statements ``target.rest[0]...`` refers to."""
        if target is None:
            return set()
        module, name = target
        if name is None and not rest:
            return self._whole(module)
        if name is None:
            return self._name(module, rest[0], rest[1:])
        return self._name(module, name, rest)

    def _name(self, module_name: str, name: str, rest: tuple[str, ...]) -> set[Node]:
        """The statements binding ``name`` in a module (through re-exports)."""
        module = self.module(module_name)
        if module is None:
            return set()
        if name in module.bindings:
            return {(module_name, index) for index in module.bindings[name]}
        if name in module.imports:
            return self._follow(module.imports[name], rest)
        if self._file(f"{module_name}.{name}") is not None:
            return self._follow((f"{module_name}.{name}", None), rest)
        return self._whole(module_name)

    def dependencies(self, node: Node) -> set[Node]:
        """The statements one statement refers to directly."""
        if node in self._dependencies:
            return self._dependencies[node]
        module_name, index = node
        module = self.module(module_name)
        assert module is not None
        statement = module.statements[index]
        references = _References()
        references.visit(statement)
        local_imports: dict[str, Target] = {}
        for statement_import in references.imports:
            local_imports.update(self._import_targets(statement_import, module.package))
        own_names = {name for name, nodes in module.bindings.items() if index in nodes}
        local = (references.local - references.declared_global - own_names) - set(
            local_imports
        )
        found: set[Node] = set()
        for chain in references.chains:
            head, rest = chain[0], chain[1:]
            if head in local_imports:
                found |= self._follow(local_imports[head], rest)
            elif head in local:
                continue
            elif head in module.bindings:
                found |= {(module_name, i) for i in module.bindings[head]}
            elif head in module.imports:
                found |= self._follow(module.imports[head], rest)
        found.discard(node)
        self._dependencies[node] = found
        return found

    def _effects(self, module_name: str) -> Iterable[Node]:
        """Statements run when a module is imported (its packages' too)."""
        parts = module_name.split(".")
        for end in range(1, len(parts) + 1):
            name = ".".join(parts[:end])
            module = self.module(name)
            if module is not None:
                yield from ((name, index) for index in module.effects)

    def closure(self, module_name: str, name: str) -> set[Node]:
        """Every statement the code bound to ``module.name`` runs or refers to."""
        todo = list(self._name(module_name, name, ()))
        seen: set[Node] = set()
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            todo.extend(self.dependencies(node))
            todo.extend(self._effects(node[0]))
        return seen

    def digest(self, module_name: str, index: int) -> str:
        """SHA-256 of one statement's tokens (computed once)."""
        key = (module_name, index)
        if key not in self._digests:
            module = self.module(module_name)
            assert module is not None
            self._digests[key] = _statement_digest(
                module.lines, module.statements[index]
            )
        return self._digests[key]

    def rule_code(self, rule: str) -> str:
        """Hash of the code rule ``rule`` runs (16 hexadecimal digits).

        Raises
        ------
        KeyError
            When the adapters module has no function named like the rule.
        """
        if rule not in self._hashes:
            adapters = self.module(ADAPTERS)
            indices = adapters.bindings.get(rule, []) if adapters else []
            if not any(
                isinstance(adapters.statements[i], ast.FunctionDef)  # type: ignore[union-attr]
                for i in indices
            ):
                raise KeyError(f"no adapter named {rule!r} in {ADAPTERS}")
            digest = hashlib.sha256()
            entries = sorted(
                f"{module}:{self.digest(module, index)}"
                for module, index in self.closure(ADAPTERS, rule)
            )
            for entry in entries:
                digest.update(entry.encode() + b"\n")
            self._hashes[rule] = digest.hexdigest()[:16]
        return self._hashes[rule]


@cache
def _package_index() -> CodeIndex:
    """The index of this package's code (read once per process)."""
    return CodeIndex(Path(__file__).resolve().parents[1])


#: Where the hashes are kept between runs (in the working directory's
#: ``.snakemake``), with the digest of the package's sources they were computed
#: from: reading the workflow then parses no module (a no-op run saves ~0.3 s).
CACHE = Path(".snakemake") / "sparseconn-rule-code.json"


def _sources_digest(package_dir: Path) -> str:
    """SHA-256 of every module of the package (names and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


@cache
def _known_codes() -> tuple[str, dict[str, str]]:
    """The sources' digest and the hashes cached for exactly these sources."""
    sources = _sources_digest(Path(__file__).resolve().parents[1])
    try:
        cached = json.loads(CACHE.read_text(encoding="utf-8"))
        if cached.get("sources") == sources:
            return sources, dict(cached["codes"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return sources, {}


def _store(sources: str, codes: dict[str, str]) -> None:
    """Write the cache atomically; a folder that cannot be written is no error."""
    try:
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        temporary = CACHE.with_name(f"{CACHE.name}.{os.getpid()}.tmp")
        temporary.write_text(
            json.dumps({"sources": sources, "codes": codes}, sort_keys=True),
            encoding="utf-8",
        )
        os.replace(temporary, CACHE)
    except OSError:
        pass


def rule_code(rule: str) -> str:
    """Hash of the code rule ``rule`` runs: the ``code`` param of every rule.

    Editing that code (the rule's adapter, or any function, class or constant of
    the package it reaches) changes the hash, so Snakemake reruns the rule's jobs;
    editing code the rule does not reach does not. Hashes are cached for the
    package's exact sources (:data:`CACHE`).
    """
    sources, codes = _known_codes()
    if rule not in codes:
        codes[rule] = _package_index().rule_code(rule)
        _store(sources, codes)
    return codes[rule]
