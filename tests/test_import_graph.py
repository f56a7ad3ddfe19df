"""The import graph of aidsafe, read from the source with `ast` (nothing is imported).

Every import of an aidsafe module counts: at module level, inside a function (a lazy import is
still an arrow) and under `if TYPE_CHECKING:` (a type is still a dependency). The checks keep the
layers honest: no circles, no package reaching into another package's private names, and the
lower stages not depending on generation.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "aidsafe"


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the aidsafe module imported
    name: str | None  # the name taken by `from target import name`; None for a module import
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def module_files() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _base(source: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The module a `from ... import` reads from, relative imports resolved."""
    if not node.level:
        return node.module or ""
    parts = source.split(".")
    parts = parts[: len(parts) - node.level + (1 if is_package else 0)]
    return ".".join([*parts, *([node.module] if node.module else [])])


@cache
def imports_of(source: str) -> tuple[Import, ...]:
    """Every import of an aidsafe module in `source`, wherever in the file it sits."""
    path = module_files()[source]
    return imports_in(source, path.read_text(), is_package=path.name == "__init__.py")


def imports_in(source: str, text: str, is_package: bool = False) -> tuple[Import, ...]:
    """The aidsafe imports in `text`, the code of module `source`."""
    modules = module_files()
    tree = ast.parse(text, filename=source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "aidsafe"]
            found += [Import(source, name, None, node.lineno) for name in names]
        elif isinstance(node, ast.ImportFrom):
            base = _base(source, is_package, node)
            if base.split(".")[0] != "aidsafe":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target, name = (sub, None) if sub in modules else (base, alias.name)
                found.append(Import(source, target, name, node.lineno))
    return tuple(found)


def modules_importing(prefix: str) -> dict[str, list[Import]]:
    """Module -> its imports of `prefix` (a module or package name, e.g. "aidsafe.generation"),
    for every aidsafe module outside `prefix` that imports it."""
    found: dict[str, list[Import]] = {}
    for source in module_files():
        if _within(source, prefix):
            continue
        hits = [i for i in imports_of(source) if _within(i.target, prefix)]
        if hits:
            found[source] = hits
    return found


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _top(module: str) -> str:
    """The top-level aidsafe package (or top-level module) `module` belongs to."""
    return ".".join(module.split(".")[:2])


def find_cycle() -> list[str] | None:
    """One import cycle among aidsafe modules (first module repeated at the end), or None."""
    modules = module_files()
    graph = {m: sorted({i.target for i in imports_of(m) if i.target in modules and i.target != m}) for m in modules}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in graph[module]:
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in graph:
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_reader_sees_every_kind_of_import():
    """Guards the reader itself: lazy, TYPE_CHECKING and relative imports all count, and a
    `from package import name` is an arrow to the submodule when `name` is one."""
    code = (
        "from typing import TYPE_CHECKING\n"
        "import aidsafe.run.jsonl\n"
        "from aidsafe.errors import AidsafeError\n"
        "from aidsafe.guard import formats\n"
        "from . import metrics\n"
        "from .predict import load_benchmark\n"
        "if TYPE_CHECKING:\n"
        "    from aidsafe.train.recipe import TrainRecipe\n"
        "def later():\n"
        "    from aidsafe.report.build import gather\n"
    )
    found = {(i.target, i.name) for i in imports_in("aidsafe.guard.example", code)}
    assert found == {
        ("aidsafe.run.jsonl", None),
        ("aidsafe.errors", "AidsafeError"),
        ("aidsafe.guard.formats", None),
        ("aidsafe.guard.metrics", None),
        ("aidsafe.guard.predict", "load_benchmark"),
        ("aidsafe.train.recipe", "TrainRecipe"),
        ("aidsafe.report.build", "gather"),
    }
    importing = modules_importing("aidsafe.report")
    assert "aidsafe.cli.report" in importing and not any(m.startswith("aidsafe.report") for m in importing)
    targets = {i.target for m in module_files() for i in imports_of(m)}
    assert targets <= set(module_files()), sorted(targets - set(module_files()))


def test_no_import_cycle():
    cycle = find_cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_private_name_from_another_package():
    found = [
        f"{i.source}:{i.line} takes {i.name} from {i.target}"
        for m in module_files()
        for i in imports_of(m)
        if i.name is not None
        and i.name.startswith("_")
        and not i.name.startswith("__")
        and _top(i.source) != _top(i.target)
    ]
    assert not found, "\n".join(found)


def test_later_stages_do_not_import_generation():
    lower = ("aidsafe.guard", "aidsafe.pairs", "aidsafe.eval", "aidsafe.export", "aidsafe.train", "aidsafe.report")
    found = [
        f"{i.source}:{i.line} imports {i.target}"
        for source, hits in modules_importing("aidsafe.generation").items()
        if any(_within(source, package) for package in lower)
        for i in hits
    ]
    assert not found, "\n".join(found)
