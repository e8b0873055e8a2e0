"""A local stand-in of the KFP v2beta1 REST API, for tests that run the real ``kfp.Client``.

It answers the endpoints ``kfp.Client`` calls and checks every request body and filter against the
API's own models (``kfp_server_api``): an unknown field, a wrong type or an invalid enum fails the
request.
"""

import datetime as dt
import email.parser
import http.server
import json
import threading
import urllib.parse
import uuid
from typing import Any

import kfp_server_api
import yaml

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
        """The answer to one request, by resource; an unknown request fails the test."""
        path = path.removeprefix(API)
        exact = {
            ("GET", "/healthz"): lambda: {"multi_user": self.multi_user},
            ("GET", "/pipelines"): lambda: self._list_pipelines(query),
            ("POST", "/pipelines/upload"): lambda: self._upload_pipeline(query, headers, body),
            ("POST", "/pipelines/upload_version"): lambda: self._upload_version(query, headers, body),
            ("GET", "/experiments"): lambda: self._list_experiments(query),
            ("POST", "/experiments"): lambda: self._create_experiment(body),
            ("POST", "/runs"): lambda: self._create_run(body),
            ("GET", "/runs"): lambda: self._list_runs(query),
            ("POST", "/recurringruns"): lambda: self._create_recurring(body),
            ("GET", "/recurringruns"): lambda: self._list_recurring(query),
        }
        if (method, path) in exact:
            return exact[method, path]()
        return self._route_by_id(method, path)

    def _route_by_id(self, method: str, path: str) -> Any:
        """Requests on one pipeline's versions or on one recurring run, named in the path."""
        if method == "GET" and path.startswith("/pipelines/") and path.endswith("/versions"):
            versions = sorted(self.versions[path.split("/")[-2]], key=lambda v: v.created_at, reverse=True)
            return {"pipeline_versions": [wire(v) for v in versions], "total_size": len(versions)}
        if method == "POST" and path.startswith("/recurringruns/") and ":" in path:
            job_id, action = path.rsplit("/", 1)[1].split(":")
            self.recurring[job_id].mode = {"enable": "ENABLE", "disable": "DISABLE"}[action]
            return {}
        if method == "DELETE" and path.startswith("/recurringruns/"):
            del self.recurring[path.rsplit("/", 1)[1]]
            return {}
        raise AssertionError(f"unexpected request {method} {API}{path}")

    def _list_pipelines(self, query: dict[str, str]) -> dict[str, Any]:
        items = self._filtered(list(self.pipelines.values()), query)
        return {"pipelines": [wire(p) for p in items], "total_size": len(items)}

    def _upload_pipeline(self, query: dict[str, str], headers: dict[str, str], body: bytes) -> Any:
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

    def _upload_version(self, query: dict[str, str], headers: dict[str, str], body: bytes) -> Any:
        self._upload(headers, body)
        pipeline_id = query["pipelineid"]
        assert pipeline_id in self.pipelines, "a version is added to an existing pipeline"
        assert query["name"] not in [v.display_name for v in self.versions[pipeline_id]], "version names are unique"
        return wire(self._new_version(pipeline_id, query["name"]))

    def _list_experiments(self, query: dict[str, str]) -> dict[str, Any]:
        items = [e for e in self._filtered(list(self.experiments.values()), query)
                 if (e.namespace or None) == (query.get("namespace") or None)]  # fmt: skip
        return {"experiments": [wire(e) for e in items]}

    def _create_experiment(self, body: bytes) -> Any:
        experiment = check_model(json.loads(body), "V2beta1Experiment")
        experiment.experiment_id = str(uuid.uuid4())
        self.experiments[experiment.experiment_id] = experiment
        return wire(experiment)

    def _create_run(self, body: bytes) -> Any:
        run = check_model(json.loads(body), "V2beta1Run")
        self._check_references(run)
        run.run_id, run.state, run.created_at = str(uuid.uuid4()), "PENDING", dt.datetime.now(dt.UTC)
        self.runs[run.run_id] = run
        return wire(run)

    def _list_runs(self, query: dict[str, str]) -> dict[str, Any]:
        runs = sorted(self.runs.values(), key=lambda r: r.created_at, reverse=True)
        if "experiment_id" in query:
            runs = [r for r in runs if r.experiment_id == query["experiment_id"]]
        return {"runs": [wire(r) for r in runs[: int(query.get("page_size", 100))]], "total_size": len(runs)}

    def _create_recurring(self, body: bytes) -> Any:
        job = check_model(json.loads(body), "V2beta1RecurringRun")
        self._check_references(job)
        job.recurring_run_id, job.created_at = str(uuid.uuid4()), dt.datetime.now(dt.UTC)
        self.recurring[job.recurring_run_id] = job
        return wire(job)

    def _list_recurring(self, query: dict[str, str]) -> dict[str, Any]:
        jobs = self._filtered(list(self.recurring.values()), query)
        if "experiment_id" in query:
            jobs = [j for j in jobs if j.experiment_id == query["experiment_id"]]
        return {"recurringRuns": [wire(j) for j in jobs], "total_size": len(jobs)}

    def _check_references(self, run: Any) -> None:
        assert run.experiment_id in self.experiments, "runs belong to an existing experiment"
        ref = run.pipeline_version_reference
        assert ref and ref.pipeline_id in self.pipelines, "runs reference an uploaded pipeline"
        assert ref.pipeline_version_id in [v.pipeline_version_id for v in self.versions[ref.pipeline_id]]
        assert run.pipeline_spec is None, "the spec is referenced by version, not inlined"


def _name_filter(name: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "string_value": name}]})
