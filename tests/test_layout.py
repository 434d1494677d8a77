"""The shape of the shipped package, checked so that it cannot drift back.

- Shipped code (everything under ``engine/``) never imports a test helper: those live in
  ``tests/`` (``tests/support/`` for the ones the benchmarks share), and a wheel of
  ``engine`` must work without them. Read from the import statements (ast), lazy imports
  inside functions included.
- A module stays under ``MAX_MODULE_LINES`` and a function under ``MAX_FUNCTION_LINES``,
  so that each one can be read whole.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENGINE = REPO / "engine"
TESTS = REPO / "tests"

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# No exemptions: a module or function that grows past its limit is split, so that each
# can be read in one sitting.

# Third-party packages that only the tests install (the ``dev`` extra).
TEST_ONLY_DISTRIBUTIONS = {"pytest", "_pytest", "hypothesis"}


def helper_roots() -> set[str]:
    """The names a test helper is imported by: ``tests`` itself, each package and module
    directly under it (``support``, ``conftest``, ...), and the test-only distributions."""
    roots = {"tests", *TEST_ONLY_DISTRIBUTIONS}
    for path in TESTS.iterdir():
        if (path.is_dir() and (path / "__init__.py").exists()) or path.suffix == ".py":
            roots.add(path.stem)
    return roots


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved."""
    package = module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = [] if node.level == 0 else package.split(".")[: -(node.level - 1) or None]
            if node.module:
                yield node.lineno, ".".join([*base, node.module])
            else:  # ``from . import x``: x is a module of the package
                for alias in node.names:
                    yield node.lineno, ".".join([*base, alias.name])


def helper_imports(root: Path, forbidden: set[str]) -> list[str]:
    """``file:line imports name`` for each import under ``root`` of a test helper."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for line, name in imported_modules(path, root):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(root.parent)}:{line} imports {name}")
    return found


def test_shipped_code_never_imports_test_helpers() -> None:
    assert helper_imports(ENGINE, helper_roots()) == []
    assert not (ENGINE / "testing").exists(), "test helpers belong in tests/support/"


def test_the_import_check_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The check itself: a helper imported inside a function or with ``from`` is found;
    the package's own relative imports are resolved into it and pass."""
    pkg = tmp_path / "engine"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "lazy.py").write_text("def f() -> None:\n    import support.postgres\n")
    (pkg / "sub" / "climb.py").write_text("from ... import tests\nfrom ..ok import x\n")
    (pkg / "ok.py").write_text("import os\nfrom . import sub\n")
    found = helper_imports(pkg, {"support", "tests"})
    assert found == [
        "engine/sub/climb.py:1 imports tests",
        "engine/sub/lazy.py:2 imports support.postgres",
    ]


def engine_files() -> Iterator[tuple[str, Path]]:
    for path in sorted(ENGINE.rglob("*.py")):
        yield path.relative_to(REPO).as_posix(), path


def test_no_module_is_too_long() -> None:
    long = {
        name: lines
        for name, path in engine_files()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_too_long() -> None:
    long = {}
    for name, path in engine_files():
        for node in ast.walk(ast.parse(path.read_text(), name)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{name}:{node.lineno} {node.name}"] = lines
    assert long == {}
