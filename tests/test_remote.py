"""submit / schedule / runs against a local stand-in of the KFP v2beta1 REST API.

The stand-in answers the endpoints ``kfp.Client`` calls and checks every request body and filter
against the API's own models (``kfp_server_api``): an unknown field, a wrong type or an invalid enum
fails the request. Nothing of ``pipelines/remote.py`` or ``kfp.Client`` is replaced.
"""

import datetime as dt
import email.parser
import http.server
import json
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

kfp = pytest.importorskip("kfp")
kfp_server_api = pytest.importorskip("kfp_server_api")
from commerce_lm_pipelines import auth as kfp_auth  # noqa: E402
from commerce_lm_pipelines import commands, cron, remote  # noqa: E402
from kfp import dsl  # noqa: E402

API = "/apis/v2beta1"


class _Body:
    def __init__(self, data: str) -> None:
        self.data = data


def check_model(data: Any, klass: str) -> Any:
    """Validate wire JSON against a kfp_server_api model (unknown keys too) and deserialize it."""
    model = getattr(kfp_server_api.models, klass, None)
    if model is not None and isinstance(data, dict):
        unknown = set(data) - set(model.attribute_map.values())
        assert not unknown, f"{klass}: fields not in the KFP API: {sorted(unknown)}"
        for attr, key in model.attribute_map.items():
            kind = model.openapi_types[attr]
            if key in data and data[key] is not None and hasattr(kfp_server_api.models, kind):
                check_model(data[key], kind)
    return kfp_server_api.ApiClient().deserialize(_Body(json.dumps(data)), klass)


# filter.proto's Predicate.Operation numbers: the server (protojson) takes an enum by number or name.
_OPERATIONS = {1: "EQUALS", 2: "NOT_EQUALS", 3: "GREATER_THAN", 5: "GREATER_THAN_EQUALS", 6: "LESS_THAN",
               7: "LESS_THAN_EQUALS", 8: "IN", 9: "IS_SUBSTRING"}  # fmt: skip


def proto_json(value: Any) -> Any:
    """Normalize JSON as protojson reads it: lowerCamel or snake_case keys, enums by number or name."""
    if isinstance(value, list):
        return [proto_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in key)
        out[snake] = _OPERATIONS.get(item, item) if snake == "operation" else proto_json(item)
    return out


def wire(model: Any) -> Any:
    return kfp_server_api.ApiClient().sanitize_for_serialization(model)


class FakeKfp:
    """Just enough of the KFP API server, in memory, recording every request."""

    def __init__(self, multi_user: bool = False) -> None:
        self.multi_user = multi_user
        self.requests: list[dict[str, Any]] = []
        self.pipelines: dict[str, Any] = {}
        self.versions: dict[str, list[Any]] = {}
        self.experiments: dict[str, Any] = {}
        self.runs: dict[str, Any] = {}
        self.recurring: dict[str, Any] = {}
        self.uploaded: list[dict[str, Any]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload = fake.handle(self.command, self.path, headers, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PATCH = _any  # noqa: N815

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- request handling ------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        url = urllib.parse.urlsplit(raw_path)
        query = dict(urllib.parse.parse_qsl(url.query))
        self.requests.append({"method": method, "path": url.path, "query": query, "headers": headers})
        try:
            return 200, self.route(method, url.path, query, headers, body)
        except AssertionError as error:  # the request does not match the API: fail loudly
            self.requests[-1]["error"] = str(error)
            return 400, {"error": str(error), "code": 3, "message": str(error)}
        except KeyError as error:
            return 404, {"error": f"not found: {error}", "code": 5, "message": f"not found: {error}"}
        except Exception as error:  # anything else is a bug in the request or here: say so
            self.requests[-1]["error"] = repr(error)
            return 500, {"error": repr(error), "code": 13, "message": repr(error)}

    def _filtered(self, items: list[Any], query: dict[str, str]) -> list[Any]:
        if "filter" not in query:
            return items
        spec = check_model(proto_json(json.loads(query["filter"])), "V2beta1Filter")
        for predicate in spec.predicates:
            assert predicate.operation == "EQUALS" and predicate.key == "display_name", predicate
            items = [i for i in items if i.display_name == predicate.string_value]
        return items

    def _upload(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        message = email.parser.BytesParser().parsebytes(
            f"Content-Type: {headers['content-type']}\r\n\r\n".encode() + body
        )
        files = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                 for part in message.get_payload()}  # fmt: skip
        spec = next(yaml.safe_load_all(files["uploadfile"]))  # a platform spec may follow
        assert "pipelineInfo" in spec and "root" in spec, "the upload is a compiled KFP pipeline spec"
        self.uploaded.append(spec)
        return spec

    def _new_version(self, pipeline_id: str, name: str) -> Any:
        version = kfp_server_api.V2beta1PipelineVersion(
            pipeline_id=pipeline_id, pipeline_version_id=str(uuid.uuid4()), display_name=name,
            created_at=dt.datetime.now(dt.UTC),
        )  # fmt: skip
        self.versions[pipeline_id].append(version)
        return version

    def route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Any:
        route = (method, path.removeprefix(API))
        if route == ("GET", "/healthz"):
            return {"multi_user": self.multi_user}
        if route == ("GET", "/pipelines"):
            items = self._filtered(list(self.pipelines.values()), query)
            return {"pipelines": [wire(p) for p in items], "total_size": len(items)}
        if route == ("POST", "/pipelines/upload"):
            self._upload(headers, body)
            assert query.get("name"), "a pipeline is uploaded with a name"
            assert not self._filtered(list(self.pipelines.values()), {"filter": _name_filter(query["name"])}), (
                "pipeline names are unique"
            )
            pipeline = kfp_server_api.V2beta1Pipeline(
                pipeline_id=str(uuid.uuid4()), display_name=query["name"], namespace=query.get("namespace")
            )
            self.pipelines[pipeline.pipeline_id] = pipeline
            self.versions[pipeline.pipeline_id] = []
            self._new_version(pipeline.pipeline_id, query["name"])
            return wire(pipeline)
        if route == ("POST", "/pipelines/upload_version"):
            self._upload(headers, body)
            pipeline_id = query["pipelineid"]
            assert pipeline_id in self.pipelines, "a version is added to an existing pipeline"
            assert query["name"] not in [v.display_name for v in self.versions[pipeline_id]], "version names are unique"
            return wire(self._new_version(pipeline_id, query["name"]))
        if method == "GET" and path.startswith(f"{API}/pipelines/") and path.endswith("/versions"):
            versions = sorted(self.versions[path.split("/")[-2]], key=lambda v: v.created_at, reverse=True)
            return {"pipeline_versions": [wire(v) for v in versions], "total_size": len(versions)}
        if route == ("GET", "/experiments"):
            items = [e for e in self._filtered(list(self.experiments.values()), query)
                     if (e.namespace or None) == (query.get("namespace") or None)]  # fmt: skip
            return {"experiments": [wire(e) for e in items]}
        if route == ("POST", "/experiments"):
            experiment = check_model(json.loads(body), "V2beta1Experiment")
            experiment.experiment_id = str(uuid.uuid4())
            self.experiments[experiment.experiment_id] = experiment
            return wire(experiment)
        if route == ("POST", "/runs"):
            run = check_model(json.loads(body), "V2beta1Run")
            self._check_references(run)
            run.run_id, run.state, run.created_at = str(uuid.uuid4()), "PENDING", dt.datetime.now(dt.UTC)
            self.runs[run.run_id] = run
            return wire(run)
        if route == ("GET", "/runs"):
            runs = sorted(self.runs.values(), key=lambda r: r.created_at, reverse=True)
            if "experiment_id" in query:
                runs = [r for r in runs if r.experiment_id == query["experiment_id"]]
            return {"runs": [wire(r) for r in runs[: int(query.get("page_size", 100))]], "total_size": len(runs)}
        if route == ("POST", "/recurringruns"):
            job = check_model(json.loads(body), "V2beta1RecurringRun")
            self._check_references(job)
            job.recurring_run_id, job.created_at = str(uuid.uuid4()), dt.datetime.now(dt.UTC)
            self.recurring[job.recurring_run_id] = job
            return wire(job)
        if route == ("GET", "/recurringruns"):
            jobs = self._filtered(list(self.recurring.values()), query)
            if "experiment_id" in query:
                jobs = [j for j in jobs if j.experiment_id == query["experiment_id"]]
            return {"recurringRuns": [wire(j) for j in jobs], "total_size": len(jobs)}
        if method == "POST" and path.startswith(f"{API}/recurringruns/") and ":" in path:
            job_id, action = path.rsplit("/", 1)[1].split(":")
            self.recurring[job_id].mode = {"enable": "ENABLE", "disable": "DISABLE"}[action]
            return {}
        if method == "DELETE" and path.startswith(f"{API}/recurringruns/"):
            del self.recurring[path.rsplit("/", 1)[1]]
            return {}
        raise AssertionError(f"unexpected request {method} {path}")

    def _check_references(self, run: Any) -> None:
        assert run.experiment_id in self.experiments, "runs belong to an existing experiment"
        ref = run.pipeline_version_reference
        assert ref and ref.pipeline_id in self.pipelines, "runs reference an uploaded pipeline"
        assert ref.pipeline_version_id in [v.pipeline_version_id for v in self.versions[ref.pipeline_id]]
        assert run.pipeline_spec is None, "the spec is referenced by version, not inlined"


def _name_filter(name: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "string_value": name}]})


@pytest.fixture
def fake_kfp() -> Iterator[FakeKfp]:
    server = FakeKfp()
    yield server
    server.close()


@dsl.component(base_image="python:3.11-slim")
def _echo(message: str, times: int) -> str:
    return message * times


@dsl.pipeline(name="tiny")
def _tiny(message: str = "hi", times: int = 1) -> None:
    _echo(message=message, times=times)


@pytest.fixture
def package(tmp_path: Path) -> str:
    from kfp import compiler

    path = str(tmp_path / "tiny.yaml")
    compiler.Compiler().compile(_tiny, path)
    return path


@pytest.fixture
def client(fake_kfp: FakeKfp, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv(kfp_auth.TOKEN_ENV, raising=False)
    monkeypatch.setenv(kfp_auth.SA_TOKEN_ENV, "/nonexistent/token")
    return kfp_auth.make_client(fake_kfp.url, kfp_auth.Auth.from_environment())


def test_submit_adds_a_version_of_one_pipeline_and_starts_a_run(
    fake_kfp: FakeKfp, client: Any, package: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = remote.submit_run(client, package, {"message": "a", "times": 2}, ui_host="https://kfp.example")
    second = remote.submit_run(client, package, {"message": "b", "times": 3}, ui_host="https://kfp.example")
    assert len(fake_kfp.pipelines) == 1, "one pipeline, not one per submission"
    assert [r["path"] for r in fake_kfp.requests].count(f"{API}/pipelines/upload") == 1
    assert [r["path"] for r in fake_kfp.requests].count(f"{API}/pipelines/upload_version") == 1
    versions = fake_kfp.versions[first.version.pipeline_id]
    assert [v.pipeline_version_id for v in versions] == [first.version.version_id, second.version.version_id]
    assert second.version.version_name.startswith("v")
    run = fake_kfp.runs[second.run_id]
    assert run.runtime_config.parameters == {"message": "b", "times": 3}
    assert run.pipeline_version_reference.pipeline_version_id == second.version.version_id
    assert len(fake_kfp.experiments) == 1 and run.experiment_id in fake_kfp.experiments
    assert second.url == f"https://kfp.example/#/runs/details/{second.run_id}"
    assert not [r for r in fake_kfp.requests if "error" in r]


def test_cron_must_have_six_fields() -> None:
    with pytest.raises(ValueError, match=r"5 fields.*6.*seconds first.*'0 0 3 \* \* 1'"):
        cron.validate_cron("0 3 * * 1")
    with pytest.raises(ValueError, match="has 7 fields"):
        cron.validate_cron("0 0 3 * * 1 2026")
    with pytest.raises(ValueError, match="hour field"):
        cron.validate_cron("0 0 3; * * *")
    assert cron.validate_cron(" 0  0 3 * * 1 ") == "0 0 3 * * 1"
    assert cron.validate_cron("@daily") == "@daily"


def test_schedule_replaces_the_schedule_of_the_same_name(fake_kfp: FakeKfp, client: Any, package: str) -> None:
    first = remote.schedule_run(client, package, {"message": "a"}, "0 0 3 * * 1", name="retrain")
    assert first.replaced == []
    second = remote.schedule_run(client, package, {"message": "b"}, "0 30 2 * * *", name="retrain")
    assert second.replaced == [first.recurring_run_id]
    other = remote.schedule_run(client, package, {}, "0 0 0 1 * *", name="monthly")
    assert sorted(j.display_name for j in fake_kfp.recurring.values()) == ["monthly", "retrain"]
    job = fake_kfp.recurring[second.recurring_run_id]
    assert job.trigger.cron_schedule.cron == "0 30 2 * * *"
    assert int(job.max_concurrency) == 1 and job.no_catchup is True and job.mode == "ENABLE"
    assert job.runtime_config.parameters == {"message": "b"}
    assert job.pipeline_version_reference.pipeline_version_id == second.version.version_id
    assert other.recurring_run_id in fake_kfp.recurring
    assert len(fake_kfp.pipelines) == 1
    assert not [r for r in fake_kfp.requests if "error" in r]


def test_invalid_cron_uploads_nothing(fake_kfp: FakeKfp, client: Any, package: str) -> None:
    with pytest.raises(ValueError, match="5 fields"):
        remote.schedule_run(client, package, {}, "0 3 * * *", name="retrain")
    assert not fake_kfp.pipelines and not fake_kfp.recurring


def test_runs_lists_recent_runs_with_states(fake_kfp: FakeKfp, client: Any, package: str) -> None:
    ids = [remote.submit_run(client, package, {}, ui_host=fake_kfp.url).run_id for _ in range(3)]
    fake_kfp.runs[ids[0]].state = "SUCCEEDED"
    runs = remote.list_runs(client, limit=2)
    assert [r["id"] for r in runs] == ids[:0:-1] and {r["state"] for r in runs} == {"PENDING"}
    everything = remote.list_runs(client, experiment=remote.DEFAULT_EXPERIMENT)
    assert {r["id"]: r["state"] for r in everything}[ids[0]] == "SUCCEEDED"
    table = remote.format_runs(everything)
    assert table.splitlines()[0].split() == ["STATE", "CREATED_AT", "NAME", "ID"] and ids[0] in table


def test_bearer_token_from_the_environment(fake_kfp: FakeKfp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KFP_TOKEN", "s3cret")
    auth = kfp_auth.Auth.from_environment(token_env="MY_KFP_TOKEN")
    assert "s3cret" not in auth.describe()
    remote.list_runs(kfp_auth.make_client(fake_kfp.url, auth))
    assert fake_kfp.requests[-1]["headers"].get("authorization") == "Bearer s3cret"


def test_service_account_token_and_namespace(
    fake_kfp: FakeKfp, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, package: str
) -> None:
    token = tmp_path / "token"
    token.write_text("projected-sa-token")
    monkeypatch.delenv(kfp_auth.TOKEN_ENV, raising=False)
    monkeypatch.setenv(kfp_auth.SA_TOKEN_ENV, str(token))
    auth = kfp_auth.Auth.from_environment(namespace="team-a")
    assert auth.sa_token_path == str(token)
    client = kfp_auth.make_client(fake_kfp.url, auth)
    remote.submit_run(client, package, {}, ui_host=fake_kfp.url, namespace="team-a")
    assert all(r["headers"].get("authorization") == "Bearer projected-sa-token" for r in fake_kfp.requests)
    (experiment,) = fake_kfp.experiments.values()
    assert experiment.namespace == "team-a"
    assert any(r["query"].get("namespace") == "team-a" for r in fake_kfp.requests if r["path"].endswith("/experiments"))


def test_cli_commands_are_registered(capsys) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    commands.add_remote_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["schedule", "--host", "http://x", "--config", "c.yaml", "--cron", "0 3 * * *"])
    assert callable(args.func)
    assert args.func(args) == 2  # rejected before anything is compiled or sent
    assert "5 fields" in capsys.readouterr().err
    for argv in (["submit", "--host", "h", "--config", "c", "--experiment", "e"], ["runs", "--host", "h"]):
        assert callable(parser.parse_args(argv).func)


def test_recurring_run_definition_in_deploy_is_valid() -> None:
    root = Path(__file__).resolve().parents[1]
    definitions = sorted((root / "deploy").rglob("recurring-run*.yaml"))
    assert definitions, "deploy/ holds the recurring-run definition used by `schedule --definition`"
    for path in definitions:
        definition = remote.load_definition(str(path))
        cron.validate_cron(definition["cron"])
        assert definition["name"] and Path(definition["config"]).is_file(), path


def test_submit_command_end_to_end(
    fake_kfp: FakeKfp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = pytest.importorskip("commerce_lm_pipelines.pipeline")
    if not hasattr(pipeline, "pipeline_arguments"):
        pytest.skip("commerce_lm_pipelines.pipeline.pipeline_arguments not written yet")
    root = Path(__file__).resolve().parents[1]
    config = next((p for p in [root / "configs" / "tiny.yaml", root / "configs" / "demo.yaml"] if p.is_file()), None)
    if config is None:
        pytest.skip("no run config to submit")
    import argparse

    monkeypatch.delenv(kfp_auth.TOKEN_ENV, raising=False)
    monkeypatch.setenv(kfp_auth.SA_TOKEN_ENV, "/nonexistent/token")
    parser = argparse.ArgumentParser()
    commands.add_remote_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["submit", "--host", fake_kfp.url, "--config", str(config)])
    assert args.func(args) == 0
    (run,) = fake_kfp.runs.values()
    assert f"/#/runs/details/{run.run_id}" in capsys.readouterr().out
    declared = fake_kfp.uploaded[-1]["root"].get("inputDefinitions", {}).get("parameters", {})
    assert set(run.runtime_config.parameters) <= set(declared), "run arguments are pipeline parameters"


def test_daily_scoring_is_scheduled_from_its_deploy_definition(
    fake_kfp: FakeKfp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    monkeypatch.delenv(kfp_auth.TOKEN_ENV, raising=False)
    monkeypatch.setenv(kfp_auth.SA_TOKEN_ENV, "/nonexistent/token")
    definition = Path(__file__).resolve().parents[1] / "deploy" / "overlays" / "prod" / "score-run.yaml"
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command", required=True))
    argv = ["schedule", "--host", fake_kfp.url, "--definition", str(definition), "--set", "num_shards=4"]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    (job,) = fake_kfp.recurring.values()
    assert job.display_name == "commerce-lm-score-daily" and job.trigger.cron_schedule.cron == "0 0 5 * * *"
    parameters = job.runtime_config.parameters
    assert parameters["bundle"] == "gs://commerce-lm-prod-artifacts/bundles" and parameters["shards"] == [0, 1, 2, 3]
    uploaded = fake_kfp.uploaded[-1]
    assert set(parameters) <= set(uploaded["root"]["inputDefinitions"]["parameters"])
    loops = [t for name, t in uploaded["root"]["dag"]["tasks"].items() if name.startswith("for-loop")]
    assert len(loops) == 1 and loops[0]["parameterIterator"]["items"]["inputParameter"].endswith("shards")
    assert [p.display_name for p in fake_kfp.pipelines.values()] == ["commerce-lm-score"]
    # Without the listings to score, nothing is compiled or sent.
    args = parser.parse_args(["schedule", "--host", fake_kfp.url, "--pipeline", "score", "--cron", "0 0 5 * * *"])
    capsys.readouterr()
    assert args.func(args) == 2 and len(fake_kfp.recurring) == 1
    assert "needs arguments bundle and listings" in capsys.readouterr().err
