"""Load the user's predictor class and call its methods with arguments passed by name."""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.errors import PredictorInitError, PredictorLoadError

CLASS_NAME = "PythonPredictor"
#: The arguments each method may declare; the runtime passes those it declares.
ACCEPTED = {
    "__init__": ("config", "job_spec"),
    "predict": ("payload", "batch_id"),
    "on_job_complete": ("job_summary",),
}
REQUIRED = {"predict": ("payload",)}


def load_predictor_class(project_dir: Path, path: str, python_path: str | None = None) -> type:
    """Import ``path`` (relative to the project) and return its ``PythonPredictor`` class."""
    file = (project_dir / path).resolve()
    if not file.is_file():
        raise PredictorLoadError(f"{path}: predictor file not found in {project_dir}")
    for extra in filter(None, [str(project_dir), python_path and str(project_dir / python_path)]):
        if extra not in sys.path:
            sys.path.insert(0, extra)
    spec = importlib.util.spec_from_file_location("predictor", file)
    if spec is None or spec.loader is None:
        raise PredictorLoadError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules["predictor"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        detail = traceback.format_exc()
        raise PredictorLoadError(f"{path}: importing it raised {_name(e)}: {e}\n{detail}") from e
    cls = getattr(module, CLASS_NAME, None)
    if not inspect.isclass(cls):
        found = sorted(
            n for n, v in vars(module).items() if inspect.isclass(v) and v.__module__ == "predictor"
        )
        hint = f" (classes found: {', '.join(found)})" if found else ""
        raise PredictorLoadError(f"{path}: class {CLASS_NAME} not found{hint}")
    check_signatures(cls, path)
    return cls


def check_signatures(cls: type, path: str) -> None:
    """Raise ``PredictorLoadError`` if a method asks for arguments the runtime cannot give."""
    if not callable(getattr(cls, "predict", None)):
        raise PredictorLoadError(f"{path}: {CLASS_NAME} has no predict(self, payload) method")
    for method, accepted in ACCEPTED.items():
        function = getattr(cls, method, None)
        if function is None or function is object.__init__:
            continue
        params = list(inspect.signature(function).parameters.values())[1:]  # drop self
        names = {p.name for p in params}
        for param in params:
            if param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            if param.name not in accepted and param.default is param.empty:
                raise PredictorLoadError(
                    f"{path}: {CLASS_NAME}.{method} has a parameter {param.name!r} the runtime"
                    f" cannot pass; {method} may take: {', '.join(accepted) or 'nothing'}"
                )
        for name in REQUIRED.get(method, ()):
            if name not in names and not any(p.kind == p.VAR_KEYWORD for p in params):
                raise PredictorLoadError(
                    f"{path}: {CLASS_NAME}.{method} must take a {name!r} parameter"
                )


def call_by_name(function: Callable[..., Any], available: dict[str, Any]) -> Any:
    """Call ``function`` with the arguments it declares, taken from ``available``."""
    params = inspect.signature(function).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return function(**available)
    return function(**{name: value for name, value in available.items() if name in params})


def construct(cls: type, config: dict[str, Any], job_spec: dict[str, Any], path: str) -> Any:
    """Instantiate the predictor; an exception becomes ``PredictorInitError``."""
    try:
        return call_by_name(cls, {"config": config, "job_spec": job_spec})
    except Exception as e:
        raise PredictorInitError(f"{path}: {CLASS_NAME}.__init__ raised {_name(e)}: {e}") from e


def _name(e: BaseException) -> str:
    return type(e).__name__
