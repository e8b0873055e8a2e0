"""A small Kubernetes API server on 127.0.0.1 for tests that run the real ``kubernetes`` client.

It serves what a training job's life touches: custom objects (create, get, delete) in a namespace,
pods listed by label selector, and a pod's log. Created objects are validated against the CRDs in
deploy/crds/ (a schema error is a 422, as the real server answers), a second create of the same
name is a 409, and a scripted controller moves each job through its phases: the n-th read of a job
shows its n-th phase (its status, the pods that exist from then on, and an optional action such as
rank 0 publishing its metrics).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes import kube_schema

OBJECT = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)(/(?P<name>[^/]+))?$"
)
PODS = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods(/(?P<name>[^/]+)/log)?$")
SCHEMAS = {
    "trainjobs": (kube_schema.TRAINJOB_CRD, "v1alpha1"),
    "pytorchjobs": (kube_schema.PYTORCHJOB_CRD, "v1"),
}


@dataclass
class Phase:
    """One state of a job, as its controller would report it.

    Attributes:
        status: The job's ``.status`` from this phase on.
        pods: Pods that exist from this phase on: ``{"name", "labels", "phase", "log": [lines]}``.
        action: Run once when the phase is reached (e.g. rank 0 writing its outputs).
    """

    status: dict[str, Any] = field(default_factory=dict)
    pods: list[dict[str, Any]] = field(default_factory=list)
    action: Callable[[], None] | None = None


def condition(kind: str, reason: str, message: str = "") -> dict[str, Any]:
    """A condition that holds, in the shape the CRDs' status schemas require."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": kind, "status": "True", "reason": reason, "message": message, "lastTransitionTime": now}


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class FakeKube:
    """The server's state; ``with FakeKube() as kube:`` serves it on a free port."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.scripts: dict[str, list[Phase]] = {}
        self.next_script: list[Phase] = []
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.rejected: list[str] = []
        self.lock = threading.Lock()
        self.validators = {plural: kube_schema.validator(*where) for plural, where in SCHEMAS.items()}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))

    @property
    def host(self) -> str:
        """The server's URL."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeKube:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def configuration(self):  # noqa: ANN201 - a kubernetes.client.Configuration
        """A client configuration that reaches this server."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.host
        return configuration

    def kubeconfig(self, path, namespace: str = "default"):  # noqa: ANN001, ANN201
        """Write a kubeconfig file naming this server; returns its path."""
        document = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.host}}],
            "users": [{"name": "fake", "user": {"token": "test"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
        }  # fmt: skip
        path.write_text(json.dumps(document))
        return path

    # -- the controller ------------------------------------------------------------------------
    def _advance(self, key: tuple[str, str, str]) -> None:
        script = self.scripts.get(key[2])
        if not script:
            return
        phase = script.pop(0)
        self.objects[key]["status"] = phase.status
        for pod in phase.pods:
            self.pods[(key[1], pod["name"])] = {"namespace": key[1], **pod}
        if phase.action:
            phase.action()

    # -- the API -------------------------------------------------------------------------------
    def create(self, plural: str, namespace: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST a custom object."""
        problems = kube_schema.errors(self.validators[plural], body) if plural in self.validators else []
        name = body.get("metadata", {}).get("name", "")
        if problems:
            self.rejected.append(name)
            return 422, _status(422, "Invalid", f"{plural} {name!r} is invalid: " + "; ".join(problems))
        key = (plural, namespace, name)
        if key in self.objects:
            return 409, _status(409, "AlreadyExists", f'{plural} "{name}" already exists')
        stored = json.loads(json.dumps(body))
        stored["metadata"].update(uid=f"uid-{len(self.created)}", creationTimestamp="2026-01-01T00:00:00Z")
        self.objects[key] = stored
        self.scripts[name] = list(self.next_script)
        self.created.append(stored)
        return 201, stored

    def get(self, plural: str, namespace: str, name: str) -> tuple[int, dict[str, Any]]:
        """GET a custom object; each read moves its controller one phase on."""
        key = (plural, namespace, name)
        if key not in self.objects:
            return 404, _status(404, "NotFound", f'{plural} "{name}" not found')
        self._advance(key)
        return 200, self.objects[key]

    def delete(self, plural: str, namespace: str, name: str) -> tuple[int, dict[str, Any]]:
        """DELETE a custom object."""
        if self.objects.pop((plural, namespace, name), None) is None:
            return 404, _status(404, "NotFound", f'{plural} "{name}" not found')
        self.deleted.append(name)
        return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}

    def list_pods(self, namespace: str, selector: str) -> dict[str, Any]:
        """Pods whose labels match every ``key=value`` of the selector."""
        wanted = dict(part.split("=", 1) for part in selector.split(",") if part)
        items = [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod["name"], "namespace": namespace, "labels": pod["labels"]},
                "spec": {"containers": [{"name": pod.get("container", "node"), "image": "img"}]},
                "status": {"phase": pod["phase"]},
            }  # fmt: skip
            for (ns, _), pod in self.pods.items()
            if ns == namespace and all(pod["labels"].get(k) == v for k, v in wanted.items())
        ]
        return {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}


class _Handler(BaseHTTPRequestHandler):
    """Routes the requests to :attr:`kube` (set on a subclass per server)."""

    kube: FakeKube

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _log(self, namespace: str, name: str) -> None:
        pod = self.kube.pods.get((namespace, name))
        if pod is None:
            self._send(404, _status(404, "NotFound", f'pods "{name}" not found'))
            return
        # A followed log: the lines arrive one by one, then the stream ends with the container.
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Connection", "close")
        self.end_headers()
        for line in pod.get("log", []):
            self.wfile.write(f"{line}\n".encode())
            self.wfile.flush()
            time.sleep(0.01)
        self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlparse(self.path)
        pods = PODS.match(url.path)
        if pods and pods["name"]:
            self._log(pods["ns"], pods["name"])  # outside the lock: a log streams for a while
            return
        with self.kube.lock:
            if match := OBJECT.match(url.path):
                self._send(*self.kube.get(match["plural"], match["ns"], match["name"]))
            elif pods:
                selector = parse_qs(url.query).get("labelSelector", [""])[0]
                self._send(200, self.kube.list_pods(pods["ns"], selector))
            else:
                self._send(404, _status(404, "NotFound", url.path))

    def do_POST(self) -> None:  # noqa: N802
        match = OBJECT.match(urlparse(self.path).path)
        with self.kube.lock:
            self._send(*self.kube.create(match["plural"], match["ns"], self._body()))

    def do_DELETE(self) -> None:  # noqa: N802
        match = OBJECT.match(urlparse(self.path).path)
        with self.kube.lock:
            self._send(*self.kube.delete(match["plural"], match["ns"], match["name"]))


def _handler(kube: FakeKube) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"kube": kube})
