"""The import rules of the layout (README, "Layout"), checked on every module of the tree.

Module lists are read from the tree, so a new module is held to the rules of the package
it lands in without anyone adding it here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The orchestrator's packages, each one concept (README, "Layout").
PACKAGES = ("http", "jobs", "apis", "store", "delivery", "backends")


def modules(package: str) -> list[Path]:
    """Return every module file under ``package`` (a folder of the repository)."""
    return sorted((ROOT / package).rglob("*.py"))


def imports(path: Path) -> set[str]:
    """Return the absolute modules a file imports (``a.b`` for ``from a.b import c``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def offenders(package: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    """Return ``file imports name`` for each import of a forbidden module (or its children)."""
    found = []
    for path in modules(package):
        for name in sorted(imports(path)):
            hit = any(name == f or name.startswith(f + ".") for f in forbidden)
            if hit and not any(name == a or name.startswith(a + ".") for a in allowed):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_the_layout_is_the_one_the_readme_describes() -> None:
    folders = (ROOT / "orchestrator").iterdir()
    assert {p.name for p in folders if p.is_dir() and p.name != "__pycache__"} == set(PACKAGES)
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    for package in PACKAGES:
        assert f"  {package}/" in layout, (
            f"README's Layout does not describe orchestrator/{package}"
        )


def test_runtime_stands_alone() -> None:
    heavy = ("orchestrator", "cortex_tui", "fastapi", "starlette", "textual", "sqlmodel")
    assert offenders("runtime", (*heavy, "sqlalchemy", "httpx", "docker", "uvicorn")) == []


def test_cli_and_tui_speak_http_only() -> None:
    forbidden = ("orchestrator", "runtime", "sqlmodel", "sqlalchemy", "fastapi", "uvicorn")
    assert offenders("cortex_tui", forbidden) == []


def test_the_orchestrator_uses_only_the_runtimes_wire_vocabulary() -> None:
    assert offenders("orchestrator", ("runtime",), allowed=("runtime.protocol",)) == []


@pytest.mark.parametrize("package", [p for p in PACKAGES if p != "http"])
def test_only_the_http_package_imports_the_web_framework(package: str) -> None:
    web = ("fastapi", "starlette", "uvicorn", "textual", "cortex_tui")
    assert offenders(f"orchestrator/{package}", web) == []
    for path in (ROOT / "orchestrator").glob("*.py"):
        assert not any(n.split(".")[0] in web for n in imports(path)), path


def test_every_statement_on_the_store_lives_in_the_store_package() -> None:
    outside = [p for p in modules("orchestrator") if "store" not in p.relative_to(ROOT).parts]
    found = []
    for path in outside:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("exec_driver_sql", "execute", "select") or (
                name == "exec" and isinstance(node.func, ast.Attribute)
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} calls {name}")
    assert found == []


def test_backends_never_import_each_other() -> None:
    backends = ROOT / "orchestrator" / "backends"
    files = {
        path.stem: [path] for path in backends.glob("*.py") if path.stem not in _SHARED_BY_BACKENDS
    }
    files |= {
        folder.name: modules(f"orchestrator/backends/{folder.name}")
        for folder in backends.iterdir()
        if folder.is_dir() and folder.name not in ("__pycache__", *_SHARED_BY_BACKENDS)
    }
    assert set(files) >= {"process", "docker", "aws"}
    for name, paths in files.items():
        others = tuple(f"orchestrator.backends.{other}" for other in files if other != name)
        for path in paths:
            assert not [n for n in imports(path) if n.startswith(others)], path


_SHARED_BY_BACKENDS = ("__init__", "base", "gpus", "images")
