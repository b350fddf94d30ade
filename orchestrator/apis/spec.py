"""Parse and validate a project's ``cortex.yaml``: a list of Batch APIs.

Every problem raises :class:`ApiSpecError` with a message that names the file, the API and
the key, and says what to do, e.g.
``cortex.yaml: api "iris": unknown key "computee" (did you mean "compute"?)``.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import yaml

from orchestrator.apis.units import describe as _describe
from orchestrator.apis.units import format_bytes, parse_cpu, parse_quantity
from orchestrator.errors import ApiSpecError

BACKENDS = ("process", "docker", "aws")
API_KEYS = ("name", "kind", "predictor", "compute", "backend")
PREDICTOR_KEYS = ("type", "path", "config", "python_path", "image", "env")
COMPUTE_KEYS = ("cpu", "gpu", "mem")

#: The largest cortex.yaml read (it describes APIs; data belongs elsewhere).
MAX_CONFIG_FILE_BYTES = 1 << 20
#: How deep mappings and lists may nest in a config file (as in a request body's JSON).
_MAX_YAML_DEPTH = 100
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NAME_RULE = 'use lowercase letters, digits and "-" (a DNS-1123 label, at most 63 characters)'
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


#: The most one worker may ask for: more than any machine has (the largest have under 2,000
#: hardware threads, 48 TiB of memory and 16 GPUs), so that a slip of the keyboard is refused
#: at deploy, not by a backend at each worker's start (Docker's engine cannot even read a
#: CPU amount past 2**63 nanocores).
MAX_CPU_CORES = 4096
MAX_MEM_BYTES = 64 * 2**40
MAX_GPUS = 64
_MOST = "more than any machine has"


@dataclass(frozen=True)
class Compute:
    """Resources one worker asks for; ``None`` means no limit."""

    cpu: float | None = None
    gpu: int = 0
    mem: int | None = None


@dataclass(frozen=True)
class PredictorSpec:
    """Where the user's predictor lives and how it is configured."""

    type: str
    path: str
    config: dict[str, Any] = field(default_factory=dict)
    python_path: str | None = None
    image: str | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiSpec:
    """One validated API from ``cortex.yaml``."""

    name: str
    kind: str
    predictor: PredictorSpec
    compute: Compute
    backend: str | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable copy that :meth:`from_dict` turns back into this spec."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ApiSpec:
        """Rebuild a spec from :meth:`to_dict` output; project files are not checked again.

        Raises:
            ApiSpecError: A key is missing, unknown or has the wrong shape.
        """
        try:
            predictor = PredictorSpec(**copy.deepcopy(data["predictor"]))
            compute = Compute(**(data.get("compute") or {}))
            return cls(**{**data, "predictor": predictor, "compute": compute})
        except (KeyError, TypeError) as e:
            raise ApiSpecError(f"stored API spec is malformed ({e}): deploy the API again") from e


def load_cortex_yaml(project_dir: Path, config_file: str = "cortex.yaml") -> list[ApiSpec]:
    """Read, validate and return the APIs defined in ``project_dir/config_file``.

    Raises:
        ApiSpecError: The file is missing, is not valid YAML, or any API in it is invalid.
    """
    root = Path(project_dir).resolve()
    entries = _api_entries(_read_yaml(_inside(root, config_file), config_file), config_file)
    specs: list[ApiSpec] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(entries, start=1):
        spec = _parse_api(raw, config_file, index, root)
        if spec.name in seen:
            raise ApiSpecError(
                f'{config_file}: api #{index}: duplicate name "{spec.name}" (api '
                f"#{seen[spec.name]} has it too): give each API a unique name"
            )
        seen[spec.name] = index
        specs.append(spec)
    return specs


def _inside(root: Path, config_file: str) -> Path:
    """Return ``root/config_file`` if it resolves (symlinks too) inside ``root``."""
    if "\0" in config_file:
        raise _err("config_file", "", "holds a NUL character")
    path = root / config_file
    try:
        real = path.resolve(strict=False)
    except (OSError, RuntimeError) as e:  # a symlink loop, a name too long
        raise _err("config_file", "", f"{config_file}: cannot be opened ({e})") from None
    if not real.is_relative_to(root):
        raise _err(
            "config_file",
            "",
            f"{config_file} resolves outside the project directory {root}: name a file inside it",
        )
    return path


def _read_yaml(path: Path, label: str) -> object:
    """Return the parsed YAML document at ``path``, reporting errors under ``label``."""
    try:
        if not path.is_file():
            raise _err(label, "", f"file not found: {path} (create it, or name your config file)")
        size = path.stat().st_size
        if size > MAX_CONFIG_FILE_BYTES:
            raise _err(label, "", f"is {size} bytes, over the {MAX_CONFIG_FILE_BYTES}-byte limit")
        text = path.read_bytes()
        _refuse_aliases(text, label)
        return yaml.safe_load(text)
    except OSError as e:
        raise _err(label, "", f"cannot read {path}: {e.strerror}") from e
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise _err(label, "", f"invalid YAML{at}: {e.problem or e.context}") from e
    except yaml.YAMLError as e:
        raise _err(label, "", f"invalid YAML: {e}") from e
    except RecursionError:
        raise _err(label, "", f"nested more than {_MAX_YAML_DEPTH} levels deep") from None
    except ValueError as e:  # an integer past Python's digit limit
        raise _err(label, "", f"a value cannot be read: {e}") from None


def _refuse_aliases(text: bytes, label: str) -> None:
    """Refuse YAML anchors and aliases (a few nested ones expand to gigabytes), and nesting
    deeper than ``_MAX_YAML_DEPTH`` (the parser would run out of stack)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > _MAX_YAML_DEPTH:
                mark = event.start_mark
                at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
                raise _err(label, "", f"{at}nested more than {_MAX_YAML_DEPTH} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            raise _err(label, "", f"{at}YAML aliases (*name) are not accepted; write the value out")


def _api_entries(doc: object, label: str) -> list[object]:
    """Return the raw API entries; a lone mapping counts as a one-API list."""
    hint = "add a list of APIs, each with name, kind: BatchAPI and predictor"
    if doc is None:
        raise _err(label, "", f"the file is empty: {hint}")
    if isinstance(doc, dict):
        return [doc]
    if not isinstance(doc, list):
        raise _err(label, "", f"expected a list of APIs, got {_describe(doc)}: {hint}")
    if not doc:
        raise _err(label, "", f"no APIs defined: {hint}")
    return doc


def _parse_api(raw: object, label: str, index: int, root: Path) -> ApiSpec:
    """Validate the ``index``-th (1-based) API entry of the file named ``label``."""
    where = f"{label}: api #{index}"
    data = _mapping(raw, where, "", "a mapping with name, kind and predictor")
    if _is_name(data.get("name")):
        where = f'{label}: api "{data["name"]}"'
    _check_keys(data, API_KEYS, where, "")
    name, kind = _parse_name(data.get("name"), where), _parse_kind(data.get("kind"), where)
    if data.get("predictor") is None:
        raise _err(where, "", "predictor is required: add a predictor with path: <file>.py")
    return ApiSpec(
        name=name,
        kind=kind,
        predictor=_parse_predictor(data["predictor"], where, root),
        compute=_parse_compute(data.get("compute"), where),
        backend=_parse_backend(data.get("backend"), where),
    )


def _parse_name(name: object, where: str) -> str:
    if name is None:
        raise _err(where, "", f'name is required: {_NAME_RULE}, e.g. "my-api"')
    if not isinstance(name, str):
        raise _err(where, "name", f"expected a string, got {_describe(name)}")
    if not _is_name(name):
        raise _err(where, "", f'name "{name}" is invalid: {_NAME_RULE}')
    return name


def _is_name(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 63 and _NAME_RE.match(value) is not None


def _parse_kind(kind: object, where: str) -> str:
    if kind is None:
        raise _err(where, "", "kind is required: add kind: BatchAPI")
    if kind != "BatchAPI":
        message = "is not supported: only BatchAPI is (set kind: BatchAPI)"
        raise _err(where, "", f"kind {_describe(kind)} {message}")
    return "BatchAPI"


def _parse_predictor(raw: object, where: str, root: Path) -> PredictorSpec:
    data = _mapping(raw, where, "predictor", "a mapping with at least path")
    _check_keys(data, PREDICTOR_KEYS, where, "predictor")
    if data.get("type") not in (None, "python"):
        message = "is not supported: only python is (set type: python or leave it out)"
        raise _err(where, "predictor.type", f"{_describe(data['type'])} {message}")
    if data.get("path") is None:
        raise _err(where, "", "predictor.path is required: the .py file with your predictor")
    path = _inside_project(data["path"], where, "predictor.path", root)
    if not path.endswith(".py"):
        raise _err(where, "predictor.path", f'"{path}" is not a Python file: name a .py file')
    if not (root / path).is_file():
        raise _err(where, "predictor.path", f'file "{path}" does not exist in {root}')
    python_path = data.get("python_path")
    if python_path is not None:
        python_path = _inside_project(python_path, where, "predictor.python_path", root)
        if not (root / python_path).is_dir():
            message = f'directory "{python_path}" does not exist in {root}'
            raise _err(where, "predictor.python_path", message)
    image = data.get("image")
    if image is not None and (not isinstance(image, str) or not image.strip()):
        raise _err(where, "predictor.image", f"expected an image name, got {_describe(image)}")
    config = data.get("config")
    config = {} if config is None else _mapping(config, where, "predictor.config", "a mapping")
    _check_json(config, f"{where}: predictor.config")
    env = {} if data.get("env") is None else _parse_env(data["env"], where)
    return PredictorSpec("python", path, config, python_path, image, env)


def _inside_project(value: object, where: str, key: str, root: Path) -> str:
    """Return ``value`` if it is a relative path that stays inside the project directory."""
    if not isinstance(value, str) or not value.strip():
        raise _err(where, key, f"expected a relative path, got {_describe(value)}")
    pure = PurePosixPath(value)
    escapes = pure.is_absolute() or PureWindowsPath(value).is_absolute() or ".." in pure.parts
    if escapes or not (root / value).resolve().is_relative_to(root):
        message = f'"{value}" must stay inside the project directory {root}'
        raise _err(where, key, f'{message}: use a relative path without ".."')
    return value


def _parse_env(raw: object, where: str) -> dict[str, str]:
    data = _mapping(raw, where, "predictor.env", "a mapping of variable names to values")
    env: dict[str, str] = {}
    for key, value in data.items():
        if not _ENV_NAME_RE.match(key):
            rule = 'use letters, digits and "_", not starting with a digit'
            raise _err(where, "predictor.env", f'"{key}" is not a valid variable name: {rule}')
        if isinstance(value, str) and "\0" in value:
            raise _err(where, f"predictor.env.{key}", "contains a NUL character")
        if isinstance(value, bool):
            env[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            env[key] = str(value)
        else:
            expected = "expected a string, number or boolean"
            raise _err(where, f"predictor.env.{key}", f"{expected}, got {_describe(value)}")
    return env


def _parse_compute(raw: object, where: str) -> Compute:
    if raw is None:
        return Compute()
    data = _mapping(raw, where, "compute", "a mapping with cpu, gpu and/or mem")
    _check_keys(data, COMPUTE_KEYS, where, "compute")
    cpu, gpu, mem = data.get("cpu"), data.get("gpu", 0), data.get("mem")
    if not isinstance(gpu, int) or isinstance(gpu, bool):
        raise _err(where, "compute.gpu", f"expected an integer, got {_describe(gpu)}")
    if gpu < 0:
        raise _err(where, "compute.gpu", f"must be 0 or more, got {gpu}")
    if gpu > MAX_GPUS:
        raise _err(where, "compute.gpu", f"must be at most {MAX_GPUS} ({_MOST}), got {gpu}")
    cores = None if cpu is None else parse_cpu(cpu, where=f"{where}: compute.cpu")
    if cores is not None and cores > MAX_CPU_CORES:
        most = f"must be at most {MAX_CPU_CORES} cores ({_MOST})"
        raise _err(where, "compute.cpu", f"{most}, got {_describe(cpu)}")
    size = None if mem is None else parse_quantity(mem, where=f"{where}: compute.mem")
    if size is not None and size > MAX_MEM_BYTES:
        most = f"must be at most {format_bytes(MAX_MEM_BYTES)} ({_MOST})"
        raise _err(where, "compute.mem", f"{most}, got {_describe(mem)}")
    return Compute(cpu=cores, gpu=gpu, mem=size)


def _parse_backend(backend: object, where: str) -> str | None:
    if backend is None:
        return None
    if isinstance(backend, str) and backend in BACKENDS:
        return backend
    choices = ", ".join(f'"{b}"' for b in BACKENDS)
    problem = f"backend {_describe(backend)} is not supported{_did_you_mean(backend, BACKENDS)}"
    raise _err(where, "", f"{problem}: use one of {choices}, or leave it out for the default")


def _mapping(raw: object, where: str, key: str, expected: str) -> dict[str, Any]:
    """Return ``raw`` as a dict with string keys, or raise naming ``key``."""
    if not isinstance(raw, Mapping):
        raise _err(where, key, f"expected {expected}, got {_describe(raw)}")
    for k in raw:
        if not isinstance(k, str):
            raise _err(where, key, f"key {_describe(k)} must be a string (quote it)")
    return dict(raw)


def _check_keys(data: Mapping[str, Any], allowed: Sequence[str], where: str, key: str) -> None:
    """Raise on the first key of ``data`` not in ``allowed``, suggesting the closest one."""
    for k in data:
        if k not in allowed:
            hint = _did_you_mean(k, allowed) or f" (allowed keys: {', '.join(allowed)})"
            raise _err(where, key, f"unknown key {_describe(k)}{hint}")


def _check_json(value: object, where: str) -> None:
    """Raise unless ``value`` holds only JSON types, so the spec round-trips through the store."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise _err(where, "", f"key {_describe(k)} must be a string (quote it)")
            _check_json(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_json(v, f"{where}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise _err(where, "", f"{value} is not a JSON number: use a finite number or a string")
    elif not isinstance(value, str | int | float | bool | None):
        raise _err(where, "", f"{_describe(value)} is not a JSON value: quote it to pass a string")


def _err(where: str, key: str, message: str) -> ApiSpecError:
    """Return an error whose message reads ``<where>: [<key>: ]<message>``."""
    return ApiSpecError(f"{where}: {key}: {message}" if key else f"{where}: {message}")


def _did_you_mean(word: object, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(word), choices, n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""
