"""Tests for ``orchestrator.apis.spec``: real cortex.yaml files and predictors in a temp project."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from orchestrator.apis.spec import (
    BACKENDS,
    ApiSpec,
    Compute,
    PredictorSpec,
    load_cortex_yaml,
)
from orchestrator.apis.units import format_bytes, parse_cpu, parse_quantity
from orchestrator.errors import ApiSpecError

PREDICTOR = "class PythonPredictor:\n    def predict(self, payload):\n        return payload\n"

# A valid API; the error cases below change one thing about it.
IRIS = """\
- name: iris
  kind: BatchAPI
  predictor:
    path: predictor.py
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Return a resolved project dir holding predictor.py, lib/, pkg.py/ and notes.txt."""
    (tmp_path / "predictor.py").write_text(PREDICTOR)
    (tmp_path / "lib").mkdir()
    (tmp_path / "pkg.py").mkdir()
    (tmp_path / "notes.txt").write_text("not python\n")
    return tmp_path.resolve()


def load(project: Path, text: str, config_file: str = "cortex.yaml") -> list[ApiSpec]:
    (project / config_file).write_text(textwrap.dedent(text))
    return load_cortex_yaml(project, config_file)


def test_full_api_is_parsed(project: Path) -> None:
    specs = load(
        project,
        """\
        - name: iris-classifier
          kind: BatchAPI
          predictor:
            type: python
            path: predictor.py
            python_path: lib
            image: python:3.11-slim
            config: {C: 1.0, layers: [4, 8], nested: {k: null}}
            env: {LOG_LEVEL: debug, WORKERS: 4, VERBOSE: true, RATIO: 0.5}
          compute:
            cpu: 500m
            gpu: 1
            mem: 2Gi
          backend: docker
        """,
    )

    assert specs == [
        ApiSpec(
            name="iris-classifier",
            kind="BatchAPI",
            predictor=PredictorSpec(
                type="python",
                path="predictor.py",
                config={"C": 1.0, "layers": [4, 8], "nested": {"k": None}},
                python_path="lib",
                image="python:3.11-slim",
                env={"LOG_LEVEL": "debug", "WORKERS": "4", "VERBOSE": "true", "RATIO": "0.5"},
            ),
            compute=Compute(cpu=0.5, gpu=1, mem=2 * 2**30),
            backend="docker",
        )
    ]


def test_minimal_api_gets_defaults(project: Path) -> None:
    [spec] = load(project, IRIS)

    assert spec.predictor == PredictorSpec(
        type="python", path="predictor.py", config={}, python_path=None, image=None, env={}
    )
    assert spec.compute == Compute(cpu=None, gpu=0, mem=None)
    assert spec.backend is None


def test_compute_at_the_most_any_machine_has_is_accepted(project: Path) -> None:
    [spec] = load(project, IRIS + "  compute: {cpu: 4096, gpu: 64, mem: 64Ti}\n")

    assert spec.compute == Compute(cpu=4096.0, gpu=64, mem=64 * 2**40)


def test_null_optional_sections_count_as_absent(project: Path) -> None:
    [spec] = load(project, IRIS + "    config:\n    env:\n  compute:\n  backend:\n")

    assert (spec.predictor.config, spec.predictor.env) == ({}, {})
    assert (spec.compute, spec.backend) == (Compute(), None)


def test_single_mapping_is_a_one_api_list(project: Path) -> None:
    specs = load(project, "name: iris\nkind: BatchAPI\npredictor: {path: predictor.py}\n")

    assert [s.name for s in specs] == ["iris"]


def test_several_apis_keep_file_order_and_may_share_a_predictor(project: Path) -> None:
    (project / "lib" / "other.py").write_text(PREDICTOR)
    specs = load(
        project,
        IRIS
        + "- {name: b-2, kind: BatchAPI, predictor: {path: lib/other.py}, backend: aws}\n"
        + "- {name: c, kind: BatchAPI, predictor: {path: ./predictor.py}}\n",
    )

    assert [(s.name, s.predictor.path, s.backend) for s in specs] == [
        ("iris", "predictor.py", None),
        ("b-2", "lib/other.py", "aws"),
        ("c", "./predictor.py", None),
    ]


def test_custom_config_file_name(project: Path) -> None:
    [spec] = load(project, IRIS, config_file="apis.yaml")
    assert spec.name == "iris"

    with pytest.raises(ApiSpecError) as exc:
        load(project, IRIS + "  computee: {}\n", config_file="apis.yaml")
    assert (
        str(exc.value) == 'apis.yaml: api "iris": unknown key "computee" (did you mean "compute"?)'
    )


def test_spec_round_trips_through_json(project: Path) -> None:
    [spec] = load(
        project,
        IRIS
        + "    config: {a: [1, {b: x}]}\n    env: {A: '1'}\n"
        + "  compute: {cpu: 2, gpu: 1, mem: 64Mi}\n  backend: process\n",
    )

    data = json.loads(json.dumps(spec.to_dict()))

    assert data["compute"] == {"cpu": 2.0, "gpu": 1, "mem": 64 * 2**20}
    assert ApiSpec.from_dict(data) == spec


def test_to_dict_does_not_share_config_with_the_spec(project: Path) -> None:
    [spec] = load(project, IRIS + "    config: {a: [1]}\n")

    spec.to_dict()["predictor"]["config"]["a"].append(2)

    assert spec.predictor.config == {"a": [1]}


def test_from_dict_does_not_share_config_with_the_data(project: Path) -> None:
    [spec] = load(project, IRIS + "    config: {a: [1]}\n")
    data = spec.to_dict()
    rebuilt = ApiSpec.from_dict(data)

    data["predictor"]["config"]["a"].append(2)

    assert rebuilt.predictor.config == {"a": [1]}


@pytest.mark.parametrize(
    "data",
    [{"name": "iris"}, {"name": "x", "kind": "BatchAPI", "predictor": {"path": "p.py"}}],
)
def test_from_dict_rejects_malformed_data(data: dict[str, object]) -> None:
    with pytest.raises(ApiSpecError, match="stored API spec is malformed"):
        ApiSpec.from_dict(data)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ApiSpecError) as exc:
        load_cortex_yaml(tmp_path)

    expected = f"file not found: {tmp_path.resolve() / 'cortex.yaml'}"
    assert str(exc.value) == f"cortex.yaml: {expected} (create it, or name your config file)"


def test_predictor_symlinked_outside_the_project_is_rejected(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "predictor.py"
    outside.write_text(PREDICTOR)
    (project / "linked.py").symlink_to(outside)

    with pytest.raises(ApiSpecError) as exc:
        load(project, IRIS.replace("predictor.py", "linked.py"))

    assert str(exc.value) == (
        f'cortex.yaml: api "iris": predictor.path: "linked.py" must stay inside the project '
        f'directory {project}: use a relative path without ".."'
    )


NAME_RULE = 'use lowercase letters, digits and "-" (a DNS-1123 label, at most 63 characters)'
MEM_HINT = 'use bytes or a number with Ki, Mi, Gi, Ti or K, M, G, T, e.g. "512Mi"'
LIST_HINT = "add a list of APIs, each with name, kind: BatchAPI and predictor"
OUTSIDE = 'must stay inside the project directory {root}: use a relative path without ".."'

# (YAML text, message); {root} stands for the project dir. Lines added to IRIS are indented
# for the API (2 spaces) or for its predictor (4 spaces).
BAD = {
    "unknown api key": (
        IRIS + "  computee: {cpu: 1}\n",
        'cortex.yaml: api "iris": unknown key "computee" (did you mean "compute"?)',
    ),
    "unknown predictor key": (
        IRIS + "    pyton_path: lib\n",
        'cortex.yaml: api "iris": predictor: unknown key "pyton_path" '
        '(did you mean "python_path"?)',
    ),
    "unknown compute key": (
        IRIS + "  compute: {gpus: 1}\n",
        'cortex.yaml: api "iris": compute: unknown key "gpus" (did you mean "gpu"?)',
    ),
    "unknown key with no close match": (
        IRIS + "  replicas: 3\n",
        'cortex.yaml: api "iris": unknown key "replicas" '
        "(allowed keys: name, kind, predictor, compute, backend)",
    ),
    "unknown key before a name": (
        "- nmae: iris\n  kind: BatchAPI\n",
        'cortex.yaml: api #1: unknown key "nmae" (did you mean "name"?)',
    ),
    "invalid name": (
        IRIS + "- {name: Iris_Classifier, kind: BatchAPI, predictor: {path: predictor.py}}\n",
        f'cortex.yaml: api #2: name "Iris_Classifier" is invalid: {NAME_RULE}',
    ),
    "name too long": (
        IRIS.replace("iris", "a" * 64),
        f'cortex.yaml: api #1: name "{"a" * 64}" is invalid: {NAME_RULE}',
    ),
    "name ending in a dash": (
        IRIS.replace("iris", "iris-"),
        f'cortex.yaml: api #1: name "iris-" is invalid: {NAME_RULE}',
    ),
    "missing name": (
        "- kind: BatchAPI\n  predictor: {path: predictor.py}\n",
        f'cortex.yaml: api #1: name is required: {NAME_RULE}, e.g. "my-api"',
    ),
    "name not a string": (
        IRIS.replace("iris", "123"),
        "cortex.yaml: api #1: name: expected a string, got 123",
    ),
    "duplicate names": (
        IRIS + IRIS + IRIS.replace("iris", "iris-2"),
        'cortex.yaml: api #2: duplicate name "iris" (api #1 has it too): '
        "give each API a unique name",
    ),
    "missing kind": (
        IRIS.replace("  kind: BatchAPI\n", ""),
        'cortex.yaml: api "iris": kind is required: add kind: BatchAPI',
    ),
    "bad kind": (
        IRIS.replace("BatchAPI", "RealtimeAPI"),
        'cortex.yaml: api "iris": kind "RealtimeAPI" is not supported: '
        "only BatchAPI is (set kind: BatchAPI)",
    ),
    "missing predictor": (
        "- name: iris\n  kind: BatchAPI\n",
        'cortex.yaml: api "iris": predictor is required: add a predictor with path: <file>.py',
    ),
    "predictor not a mapping": (
        "- {name: iris, kind: BatchAPI, predictor: predictor.py}\n",
        'cortex.yaml: api "iris": predictor: expected a mapping with at least path, '
        'got "predictor.py"',
    ),
    "bad predictor type": (
        IRIS + "    type: tensorflow\n",
        'cortex.yaml: api "iris": predictor.type: "tensorflow" is not supported: '
        "only python is (set type: python or leave it out)",
    ),
    "missing predictor path": (
        IRIS.replace("path: predictor.py", "type: python"),
        'cortex.yaml: api "iris": predictor.path is required: the .py file with your predictor',
    ),
    "missing predictor file": (
        IRIS.replace("predictor.py", "missing.py"),
        'cortex.yaml: api "iris": predictor.path: file "missing.py" does not exist in {root}',
    ),
    "path escaping with ..": (
        IRIS.replace("predictor.py", "../predictor.py"),
        f'cortex.yaml: api "iris": predictor.path: "../predictor.py" {OUTSIDE}',
    ),
    "path escaping inside": (
        IRIS.replace("predictor.py", "lib/../../predictor.py"),
        f'cortex.yaml: api "iris": predictor.path: "lib/../../predictor.py" {OUTSIDE}',
    ),
    "path with .. that stays inside": (
        IRIS.replace("predictor.py", "lib/../predictor.py"),
        f'cortex.yaml: api "iris": predictor.path: "lib/../predictor.py" {OUTSIDE}',
    ),
    "absolute path": (
        IRIS.replace("predictor.py", "/etc/predictor.py"),
        f'cortex.yaml: api "iris": predictor.path: "/etc/predictor.py" {OUTSIDE}',
    ),
    "path not a python file": (
        IRIS.replace("predictor.py", "notes.txt"),
        'cortex.yaml: api "iris": predictor.path: "notes.txt" is not a Python file: '
        "name a .py file",
    ),
    "path is a directory": (
        IRIS.replace("predictor.py", "pkg.py"),
        'cortex.yaml: api "iris": predictor.path: file "pkg.py" does not exist in {root}',
    ),
    "path not a string": (
        IRIS.replace("predictor.py", "[a.py]"),
        'cortex.yaml: api "iris": predictor.path: expected a relative path, got a list',
    ),
    "missing python_path dir": (
        IRIS + "    python_path: src\n",
        'cortex.yaml: api "iris": predictor.python_path: directory "src" does not exist in {root}',
    ),
    "python_path escaping": (
        IRIS + "    python_path: ..\n",
        f'cortex.yaml: api "iris": predictor.python_path: ".." {OUTSIDE}',
    ),
    "empty image": (
        IRIS + "    image: ''\n",
        'cortex.yaml: api "iris": predictor.image: expected an image name, got ""',
    ),
    "config not a mapping": (
        IRIS + "    config: [1, 2]\n",
        'cortex.yaml: api "iris": predictor.config: expected a mapping, got a list',
    ),
    "config with a date": (
        IRIS + "    config: {start: {day: 2024-01-31}}\n",
        'cortex.yaml: api "iris": predictor.config.start.day: 2024-01-31 (date) '
        "is not a JSON value: quote it to pass a string",
    ),
    "config with a non-string key": (
        IRIS + "    config: {1: one}\n",
        'cortex.yaml: api "iris": predictor.config: key 1 must be a string (quote it)',
    ),
    "env not a mapping": (
        IRIS + "    env: [A=1]\n",
        'cortex.yaml: api "iris": predictor.env: expected a mapping of variable names '
        "to values, got a list",
    ),
    "env bad variable name": (
        IRIS + "    env: {1BAD: x}\n",
        'cortex.yaml: api "iris": predictor.env: "1BAD" is not a valid variable name: '
        'use letters, digits and "_", not starting with a digit',
    ),
    "env value not a scalar": (
        IRIS + "    env: {HOSTS: [a, b]}\n",
        'cortex.yaml: api "iris": predictor.env.HOSTS: expected a string, number or boolean, '
        "got a list",
    ),
    "compute not a mapping": (
        IRIS + "  compute: 2\n",
        'cortex.yaml: api "iris": compute: expected a mapping with cpu, gpu and/or mem, got 2',
    ),
    "gpu a word": (
        IRIS + "  compute: {gpu: two}\n",
        'cortex.yaml: api "iris": compute.gpu: expected an integer, got "two"',
    ),
    "gpu a boolean": (
        IRIS + "  compute: {gpu: true}\n",
        'cortex.yaml: api "iris": compute.gpu: expected an integer, got true',
    ),
    "gpu negative": (
        IRIS + "  compute: {gpu: -1}\n",
        'cortex.yaml: api "iris": compute.gpu: must be 0 or more, got -1',
    ),
    "cpu a word": (
        IRIS + "  compute: {cpu: lots}\n",
        'cortex.yaml: api "iris": compute.cpu: expected a number of cores such as 1, 0.5 '
        'or "500m", got "lots"',
    ),
    "cpu zero": (
        IRIS + "  compute: {cpu: 0}\n",
        'cortex.yaml: api "iris": compute.cpu: must be more than 0 cores, got 0',
    ),
    "gpu more than any machine has": (
        IRIS + "  compute: {gpu: 65}\n",
        'cortex.yaml: api "iris": compute.gpu: must be at most 64 (more than any machine'
        " has), got 65",
    ),
    "cpu more than any machine has": (
        IRIS + "  compute: {cpu: 99999999999999999999999}\n",
        'cortex.yaml: api "iris": compute.cpu: must be at most 4096 cores (more than any'
        " machine has), got 99999999999999999999999",
    ),
    "cpu a millicore past the most": (
        IRIS + "  compute: {cpu: 4096001m}\n",
        'cortex.yaml: api "iris": compute.cpu: must be at most 4096 cores (more than any'
        ' machine has), got "4096001m"',
    ),
    "cpu a huge float": (
        IRIS + "  compute: {cpu: 1.0e+300}\n",
        'cortex.yaml: api "iris": compute.cpu: must be at most 4096 cores (more than any'
        " machine has), got 1e+300",
    ),
    "mem more than any machine has": (
        IRIS + "  compute: {mem: 65Ti}\n",
        'cortex.yaml: api "iris": compute.mem: must be at most 64Ti (more than any machine'
        ' has), got "65Ti"',
    ),
    "mem a huge number of bytes": (
        IRIS + "  compute: {mem: 99999999999999999999999}\n",
        'cortex.yaml: api "iris": compute.mem: must be at most 64Ti (more than any machine'
        " has), got 99999999999999999999999",
    ),
    "mem with a unit it does not know": (
        IRIS + "  compute: {mem: 2GB}\n",
        f'cortex.yaml: api "iris": compute.mem: "2GB" is not a memory quantity: {MEM_HINT}',
    ),
    "mem lowercase unit": (
        IRIS + "  compute: {mem: 64mi}\n",
        f'cortex.yaml: api "iris": compute.mem: "64mi" is not a memory quantity: {MEM_HINT}',
    ),
    "mem zero": (
        IRIS + "  compute: {mem: 0Mi}\n",
        'cortex.yaml: api "iris": compute.mem: must be more than 0 bytes, got "0Mi"',
    ),
    "mem a float": (
        IRIS + "  compute: {mem: 1.5}\n",
        f'cortex.yaml: api "iris": compute.mem: expected a memory quantity, got 1.5: {MEM_HINT}',
    ),
    "bad backend": (
        IRIS + "  backend: dokcer\n",
        'cortex.yaml: api "iris": backend "dokcer" is not supported (did you mean "docker"?): '
        'use one of "process", "docker", "aws", or leave it out for the default',
    ),
    "yaml syntax error": (
        IRIS + "  compute: {cpu: 1\n",
        "cortex.yaml: invalid YAML at line 6, column 1: expected ',' or '}', "
        "but got '<stream end>'",
    ),
    "yaml bad indentation": (
        "- name: iris\n  kind: BatchAPI\n predictor:\n",
        "cortex.yaml: invalid YAML at line 3, column 2: expected <block end>, "
        "but found '<block mapping start>'",
    ),
    "empty file": ("", f"cortex.yaml: the file is empty: {LIST_HINT}"),
    "only comments": ("# nothing yet\n", f"cortex.yaml: the file is empty: {LIST_HINT}"),
    "empty list": ("[]\n", f"cortex.yaml: no APIs defined: {LIST_HINT}"),
    "top level a string": (
        "iris\n",
        f'cortex.yaml: expected a list of APIs, got "iris": {LIST_HINT}',
    ),
    "api not a mapping": (
        IRIS + "- iris-2\n",
        'cortex.yaml: api #2: expected a mapping with name, kind and predictor, got "iris-2"',
    ),
    "config nested 5000 deep": (
        IRIS + "    config: {a: " + "[" * 5000 + "]" * 5000 + "}\n",
        "cortex.yaml: line 5, column 113: nested more than 100 levels deep",
    ),
    "config integer of 6000 digits": (
        IRIS + "    config: {a: " + "9" * 6000 + "}\n",
        "cortex.yaml: a value cannot be read: Exceeds the limit (4300 digits) for integer"
        " string conversion: value has 6000 digits; use sys.set_int_max_str_digits() to"
        " increase the limit",
    ),
    "config NaN": (
        IRIS + "    config: {a: .nan}\n",
        'cortex.yaml: api "iris": predictor.config.a: nan is not a JSON number: use a finite'
        " number or a string",
    ),
    "config minus infinity in a list": (
        IRIS + "    config: {a: [1, -.inf]}\n",
        'cortex.yaml: api "iris": predictor.config.a[1]: -inf is not a JSON number: use a'
        " finite number or a string",
    ),
    "env value with a NUL": (
        IRIS + '    env: {A: "x\\0y"}\n',
        'cortex.yaml: api "iris": predictor.env.A: contains a NUL character',
    ),
}


@pytest.mark.parametrize(("text", "message"), BAD.values(), ids=BAD.keys())
def test_invalid_cortex_yaml_is_rejected_with_a_clear_message(
    project: Path, text: str, message: str
) -> None:
    with pytest.raises(ApiSpecError) as exc:
        load(project, text)

    assert str(exc.value) == message.replace("{root}", str(project))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1048576, 1048576),
        ("64Mi", 64 * 2**20),
        ("2Gi", 2 * 2**30),
        ("1Ti", 2**40),
        ("4Ki", 4096),
        ("200M", 200_000_000),
        ("1G", 10**9),
        ("3K", 3000),
        ("2T", 2 * 10**12),
        ("512", 512),
        ("1.5Gi", 3 * 2**29),
        ("0.5K", 500),
        ("0.0001K", 1),  # a fraction of a byte rounds up, as in Kubernetes
    ],
)
def test_parse_quantity(value: object, expected: int) -> None:
    assert parse_quantity(value, where="x") == expected


@pytest.mark.parametrize("value", ["", "Mi", "1.5.0Gi", "-1Gi", "1 Gi", "1e9", True, None, [1]])
def test_parse_quantity_rejects(value: object) -> None:
    with pytest.raises(ApiSpecError, match=r"^cortex\.yaml: api \"a\": compute\.mem: "):
        parse_quantity(value, where='cortex.yaml: api "a": compute.mem')


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1.0), (0.5, 0.5), ("500m", 0.5), ("2", 2.0), ("1.5", 1.5), ("250m", 0.25), (".5", 0.5)],
)
def test_parse_cpu(value: object, expected: float) -> None:
    assert parse_cpu(value, where="x") == expected


@pytest.mark.parametrize("value", ["0m", -1, "1 core", "m", float("inf"), float("nan"), False])
def test_parse_cpu_rejects(value: object) -> None:
    with pytest.raises(ApiSpecError, match=r"^here: "):
        parse_cpu(value, where="here")


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (67108864, "64Mi"),
        (2**30, "1Gi"),
        (2**40, "1Ti"),
        (200_000_000, "200M"),
        (2 * 10**9, "2G"),
        (1024, "1Ki"),
        (1500, "1500"),
        (1, "1"),
        (0, "0"),
    ],
)
def test_format_bytes(n: int, text: str) -> None:
    assert format_bytes(n) == text
    if n > 0:
        assert parse_quantity(text, where="x") == n


def test_backends_are_the_three_known_names() -> None:
    assert BACKENDS == ("process", "docker", "aws")
