"""s3:// job sources against a real moto server: listing by raw key prefix, includes and
excludes on whole s3:// URLs, streaming delimited files, and the 400s a user can fix.

The orchestrator reads S3 itself and puts the items in batches, so these run on the process
backend and hold for every backend. One moto server and one orchestrator serve most of the
module; the tests of credentials start their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import motokit
import pytest
from conftest import SAMPLES, Server

from orchestrator.aws import Clients
from orchestrator.errors import SourceError
from orchestrator.jobs.sources import MAX_LINE_BYTES, parse_source
from orchestrator.settings import Settings

pytestmark = pytest.mark.aws

BUCKET = "job-data"
#: Objects put in the bucket in an order that is not sorted.
OBJECTS = {
    "items/b.jsonl": [3, 4, 5],
    "items/a.jsonl": [0, 1, 2],
    "items/sub/c.jsonl": [6, 7],
    "items2/d.jsonl": [100],
    "images/2.png": None,
    "images/1.png": None,
    "images/notes.txt": None,
}
#: Variables that give botocore credentials some other way (their presence is enough).
CREDENTIAL_SOURCES = (
    "AWS_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)
#: An IAM policy that lets its user list one bucket and do nothing else.
LIST_ONLY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::listable"}
        ],
    }
)


def url(key: str) -> str:
    return f"s3://{BUCKET}/{key}"


def put_jsonl(s3: Any, key: str, lines: list[str]) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body="".join(line + "\n" for line in lines).encode())


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[motokit.MotoServer]:
    """One moto server for the module, holding the bucket of ``OBJECTS``."""
    motokit.require_moto(docker=False)
    with motokit.running(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        s3 = server.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        for key, items in OBJECTS.items():
            lines = [json.dumps(i) for i in items] if items is not None else ["binary"]
            put_jsonl(s3, key, lines)
        s3.put_object(Bucket=BUCKET, Key="items/", Body=b"")  # a console "folder"
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto: motokit.MotoServer) -> Iterator[Server]:
    """An orchestrator whose AWS environment is the moto server's, with testbench deployed."""
    srv = Server(tmp_path_factory.mktemp("s3") / "home", env=moto.env)
    srv.home.mkdir()
    srv.start()
    srv.deploy(SAMPLES / "testbench")
    yield srv
    left = srv.cleanup()
    assert not left, f"workers left behind: {left}"


def job_count(server: Server) -> int:
    return len(server.http.get("/testbench").json()["jobs"])


def dry_run(server: Server, body: dict[str, Any]) -> dict[str, Any]:
    """Dry-run ``body``, expecting a 200 and no new job; return the answer."""
    before = job_count(server)
    response = server.http.post("/testbench", params={"dryRun": "true"}, json=body)
    assert response.status_code == 200, response.text
    assert job_count(server) == before
    return response.json()  # type: ignore[no-any-return]


def refusal(server: Server, body: dict[str, Any]) -> str:
    """Submit ``body``, expecting a 400 and no new job; return the error message."""
    before = job_count(server)
    response = server.http.post("/testbench", json=body)
    assert response.status_code == 400, response.text
    assert job_count(server) == before
    return str(response.json()["error"])


def listed(server: Server, paths: list[str], **filters: list[str]) -> list[str]:
    """Return the files a file_path_lister dry run lists for ``paths``."""
    body = {"file_path_lister": {"s3_paths": paths, "batch_size": 1, **filters}}
    return list(dry_run(server, body)["files"])


# --- jobs over S3 objects ----------------------------------------------------------------


def test_a_delimited_files_job_reads_the_objects_in_key_order(server: Server) -> None:
    body = {
        "workers": 2,
        "delimited_files": {
            "s3_paths": [url("items/")],
            "includes": ["**/*.jsonl"],
            "batch_size": 3,
        },
    }

    job = server.submit("testbench", body)
    status = server.wait("testbench", job["job_id"], timeout=30)

    assert status["status"] == "status_succeeded", status
    results = server.results("testbench", job["job_id"])
    assert [r["result"]["item"] for r in results] == list(range(8))
    assert [r["batch_index"] for r in results] == [0, 0, 0, 1, 1, 1, 2, 2]
    assert status["source"]["files"] == [
        url("items/a.jsonl"),
        url("items/b.jsonl"),
        url("items/sub/c.jsonl"),
    ]


def test_a_file_path_lister_job_hands_each_object_url_to_the_predictor(server: Server) -> None:
    body = {
        "file_path_lister": {
            "s3_paths": [url("images")],
            "includes": ["**/*.png"],
            "batch_size": 1,
        }
    }

    job = server.submit("testbench", body)
    status = server.wait("testbench", job["job_id"], timeout=30)

    assert status["status"] == "status_succeeded", status
    items = [r["result"]["item"] for r in server.results("testbench", job["job_id"])]
    assert items == [url("images/1.png"), url("images/2.png")]


def test_a_bad_line_in_an_object_fails_enqueuing_naming_the_object_and_line(
    server: Server, moto: motokit.MotoServer
) -> None:
    put_jsonl(moto.client("s3"), "bad/items.jsonl", ["1", "2", "{not json"])

    job = server.submit(
        "testbench", {"delimited_files": {"s3_paths": [url("bad/")], "batch_size": 1}}
    )
    status = server.wait("testbench", job["job_id"], timeout=30)

    assert status["status"] == "status_enqueue_failed", status
    assert status["message"] == (
        f"delimited_files: {url('bad/items.jsonl')} line 3: invalid JSON (Expecting property "
        "name enclosed in double quotes)"
    )
    assert sum(status["worker_stats"].values()) == 0


# --- listing: raw prefixes, one object, includes and excludes -----------------------------


def test_a_prefix_matches_keys_as_written_like_cortex(server: Server) -> None:
    under_items = [url("items/a.jsonl"), url("items/b.jsonl"), url("items/sub/c.jsonl")]

    assert listed(server, [url("items/")]) == under_items  # the "items/" marker is no file
    assert listed(server, [url("items")]) == [*under_items, url("items2/d.jsonl")]
    assert listed(server, [url("items/a.jsonl")]) == [url("items/a.jsonl")]


def test_the_bucket_alone_lists_every_object_sorted(
    server: Server, moto: motokit.MotoServer
) -> None:
    s3 = moto.client("s3")
    s3.create_bucket(Bucket="whole")
    for key in ["b/2", "a", "b/1", "B"]:
        s3.put_object(Bucket="whole", Key=key, Body=b"0\n")

    expected = ["s3://whole/B", "s3://whole/a", "s3://whole/b/1", "s3://whole/b/2"]
    assert listed(server, ["s3://whole"]) == expected
    assert listed(server, ["s3://whole/"]) == expected


def test_includes_and_excludes_match_the_whole_s3_url(server: Server) -> None:
    paths = [url("items")]

    assert listed(server, paths, includes=[url("items/*.jsonl")]) == [
        url("items/a.jsonl"),
        url("items/b.jsonl"),
    ]
    assert listed(
        server, paths, includes=["**/*.jsonl"], excludes=["**/sub/**", "s3://*/*2/*"]
    ) == [
        url("items/a.jsonl"),
        url("items/b.jsonl"),
    ]


def test_an_include_that_matches_no_key_is_refused(server: Server) -> None:
    body = {
        "file_path_lister": {
            "s3_paths": [url("items/")],
            "includes": ["items/*.jsonl"],
            "batch_size": 1,
        }
    }

    message = refusal(server, body)

    assert message.startswith(f'file_path_lister: no files matched s3_paths ["{url("items/")}"]')
    assert "3 files found before filtering" in message


def test_a_dry_run_lists_the_objects_and_counts_their_items(server: Server) -> None:
    body = {"delimited_files": {"s3_paths": [url("items/"), url("items2/")], "batch_size": 4}}

    result = dry_run(server, body)

    assert result["files"] == [
        url("items/a.jsonl"),
        url("items/b.jsonl"),
        url("items/sub/c.jsonl"),
        url("items2/d.jsonl"),
    ]
    assert (result["batches"], result["items"]) == (3, 9)


# --- what a user can fix: 400 at submit, naming the path ----------------------------------


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("s3://no-such-bucket/data/", 'the bucket "no-such-bucket" does not exist'),
        (
            url("nothing/here"),
            f'no object in the bucket "{BUCKET}" has a key starting with "nothing/here"',
        ),
        ("s3:///data/", "names no bucket (write s3://bucket/prefix)"),
        ("s3://Not_A_Bucket!/x", '"Not_A_Bucket!" is not a valid bucket name'),
    ],
)
def test_a_path_that_lists_nothing_is_a_400_naming_it(
    server: Server, path: str, problem: str
) -> None:
    message = refusal(server, {"delimited_files": {"s3_paths": [path], "batch_size": 1}})

    assert message.startswith(f"delimited_files.s3_paths[0]: {path}: "), message
    assert problem in message


def test_no_credentials_is_a_400_that_says_where_to_set_them(
    tmp_path: Path, moto: motokit.MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in CREDENTIAL_SOURCES:  # the server inherits this process's environment
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty").write_text("")
    env = {
        **moto.env,
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SESSION_TOKEN": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "empty"),
        "AWS_CONFIG_FILE": str(tmp_path / "empty"),
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata lookup (seconds of timeouts)
    }
    server = Server(tmp_path / "home", env=env)
    server.home.mkdir()
    try:
        server.start()
        server.deploy(SAMPLES / "testbench")
        message = refusal(
            server, {"file_path_lister": {"s3_paths": [url("images/")], "batch_size": 1}}
        )
    finally:
        assert not server.cleanup()

    assert message.startswith(
        f"file_path_lister.s3_paths[0]: {url('images/')}: no AWS credentials found: set"
        " AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) in the orchestrator's"
        " environment"
    ), message


def test_access_denied_is_a_400_naming_the_permission_to_grant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    motokit.require_moto(docker=False)
    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "6")  # moto checks IAM after the setup
    with motokit.running(tmp_path / "moto.log") as moto:
        s3, iam = moto.client("s3"), moto.client("iam")
        for bucket in ("listable", "secret"):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket="listable", Key="a.jsonl", Body=b"1\n")
        iam.create_user(UserName="lister")
        iam.put_user_policy(UserName="lister", PolicyName="list", PolicyDocument=LIST_ONLY)
        key = iam.create_access_key(UserName="lister")["AccessKey"]
        env = {
            **moto.env,
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        aws = Clients(Settings(home=tmp_path))

        with pytest.raises(SourceError) as not_listed:
            parse_source(
                {"file_path_lister": {"paths": ["s3://secret/"], "batch_size": 1}}, aws=aws
            )
        source = parse_source(
            {"delimited_files": {"paths": ["s3://listable/"], "batch_size": 1}}, aws=aws
        )
        with pytest.raises(SourceError) as not_read:
            source.dry_run()

    assert not_listed.value.status_code == 400
    assert not_listed.value.message == (
        "file_path_lister.paths[0]: s3://secret/: access denied by AWS (AccessDenied): the"
        ' orchestrator\'s credentials need s3:ListBucket on the bucket "secret"'
    )
    assert not_read.value.message == (
        "delimited_files: s3://listable/a.jsonl: cannot be read (GetObject: access denied by"
        " AWS (AccessDenied): the orchestrator's credentials need s3:GetObject on the bucket"
        ' "listable")'
    )


# --- reading: buffered streams, the same line checks, errors while reading ----------------


@pytest.fixture
def aws(moto: motokit.MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Clients:
    """AWS clients of this process, made the orchestrator's way, reaching the moto server."""
    for name, value in moto.env.items():
        monkeypatch.setenv(name, value)
    return Clients(Settings(home=tmp_path))


def test_lines_across_read_buffers_are_read_whole(moto: motokit.MotoServer, aws: Clients) -> None:
    lines = [json.dumps({"n": n, "pad": "x" * (n % 100)}) for n in range(25_000)]  # 1.7 MB
    put_jsonl(moto.client("s3"), "big/lines.jsonl", lines)
    body = {"delimited_files": {"paths": [url("big/")], "batch_size": 1000}}

    source = parse_source(body, aws=aws)
    batches = list(source.batches())

    assert [item["n"] for batch in batches for item in batch] == list(range(25_000))
    assert batches[-1][-1] == json.loads(lines[-1])


def test_an_overlong_line_is_refused_as_in_a_local_file(
    moto: motokit.MotoServer, aws: Clients
) -> None:
    put_jsonl(moto.client("s3"), "long/a.jsonl", ["1", json.dumps("x" * MAX_LINE_BYTES)])
    source = parse_source({"delimited_files": {"paths": [url("long/")], "batch_size": 1}}, aws=aws)

    with pytest.raises(SourceError) as caught:
        source.dry_run()

    assert caught.value.message == (
        f"delimited_files: {url('long/a.jsonl')} line 2: line is longer than {MAX_LINE_BYTES}"
        " bytes (one item may be at most 262144 bytes)"
    )


def test_an_object_deleted_after_listing_is_a_source_error_naming_it(
    moto: motokit.MotoServer, aws: Clients
) -> None:
    s3 = moto.client("s3")
    put_jsonl(s3, "gone/a.jsonl", ["1"])
    source = parse_source({"delimited_files": {"paths": [url("gone/")], "batch_size": 1}}, aws=aws)
    s3.delete_object(Bucket=BUCKET, Key="gone/a.jsonl")

    with pytest.raises(SourceError) as caught:
        list(source.batches())

    assert caught.value.message == (
        f"delimited_files: {url('gone/a.jsonl')}: cannot be read (GetObject: the object no"
        " longer exists: it was deleted or renamed since it was listed)"
    )
