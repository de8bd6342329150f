"""The house's shape: imports point down the layers, and no two modules import each other.

Read from the source (the AST), counting every import a module makes — at the top, inside
functions, but not under ``if TYPE_CHECKING:`` (types only, never run).

Layers, top to bottom (docs/adr/0007): the front ends (``cli/`` as ``sandi_cli``, ``server/``
as ``sandi_server``), then toolkit / documents, directory, authority, policy / keystore, audit,
registry / formats, and at the bottom errors, i18n, timefmt, portable, fsutil, home.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = {"sandi": ROOT / "sandi", "sandi_cli": ROOT / "cli", "sandi_server": ROOT / "server"}

BOTTOM = 1  # sandi.errors, sandi.i18n, sandi.timefmt, sandi.portable, sandi.fsutil, sandi.home, sandi
# Higher number = higher layer; a module may import only its own layer or below.
RANK = {
    "sandi_cli": 9, "sandi_server": 9,
    "sandi.toolkit": 8, "sandi.documents": 7,
    "sandi.directory": 6, "sandi.authority": 5,
    "sandi.policy": 4, "sandi.keystore": 4,
    "sandi.audit": 3, "sandi.registry": 2, "sandi.formats": 2, "sandi.httpclient": 2,
    # the bounded JSON/TOML loader is a bottom utility (errors and i18n only), used by home
    "sandi.formats.bounded": BOTTOM,
}


def _rank(module: str) -> int:
    for prefix, rank in sorted(RANK.items(), key=lambda item: -len(item[0])):
        if module == prefix or module.startswith(prefix + "."):
            return rank
    return BOTTOM


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        if not folder.is_dir():
            continue
        for path in folder.rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skipped.update(id(n) for n in ast.walk(inner))
    out: set[str] = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            out.add(name)
            out.update(f"{name}.{alias.name}" for alias in node.names)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: {i for i in _imports(p, m) if i in modules and i != m} for m, p in modules.items()}


def test_imports_point_down_the_layers() -> None:
    upward = sorted(
        f"{m} -> {i}" for m, deps in _graph().items() for i in deps
        if _rank(i) > _rank(m) and not i.startswith(m + ".")
    )
    assert upward == []


def test_no_import_circles() -> None:
    graph = _graph()
    # A package's __init__ importing its own submodules is not a circle of meaning.
    edges = {m: {i for i in deps if not i.startswith(m + ".")} for m, deps in graph.items()}
    circles = []
    for a, deps in edges.items():
        for b in deps:
            if a in edges.get(b, set()):
                circles.append(tuple(sorted((a, b))))
    assert sorted(set(circles)) == []


def test_only_the_front_ends_import_their_frameworks() -> None:
    for module, path in _modules().items():
        imported = _imports(path, module)
        if not module.startswith("sandi_cli"):
            assert not any(i == "click" or i.startswith("click.") for i in imported), module
        if not module.startswith("sandi_server"):
            assert not any(i.split(".")[0] in ("starlette", "uvicorn") for i in imported), module
