"""The import rules of DESIGN.md, checked on the source tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> dict[str, set[str]]:
    """Map each module file of ``package`` to the top-level modules it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def offenders(package: str, forbidden: tuple[str, ...], only: str = "") -> list[str]:
    return [
        f"{file} imports {name}"
        for file, names in imported_modules(package).items()
        if file.startswith(only)
        for name in names
        if name.split(".")[0] in forbidden or name in forbidden
    ]


def test_runtime_stands_alone() -> None:
    assert (
        offenders("runtime", ("orchestrator", "cortex_tui", "fastapi", "textual", "sqlmodel")) == []
    )


def test_cli_and_tui_speak_http_only() -> None:
    assert offenders("cortex_tui", ("orchestrator", "sqlmodel", "sqlalchemy", "fastapi")) == []


@pytest.mark.parametrize(
    "module",
    [
        "store",
        "queue",
        "jobs",
        "lifecycle",
        "delivery",
        "supervisor",
        "workers",
        "sources",
        "apispec",
        "status",
        "models",
        "results",
        "logs",
        "apis",
        "views",
    ],
)
def test_store_and_lifecycle_import_neither_fastapi_nor_textual(module: str) -> None:
    assert (
        offenders("orchestrator", ("fastapi", "starlette", "textual"), f"orchestrator/{module}.py")
        == []
    )


def test_backends_never_import_each_other() -> None:
    backends = sorted(
        p.stem
        for p in (ROOT / "orchestrator" / "backends").glob("*.py")
        if p.stem not in ("__init__", "base", "gpus")
    )
    for name in backends:
        others = tuple(f"orchestrator.backends.{o}" for o in backends if o != name)
        assert offenders("orchestrator", others, f"orchestrator/backends/{name}.py") == []
