"""storage.py behind a fault-injecting proxy: transient faults are retried, 403/404 fail at once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from commerce_lm import storage
from tests.fakes import gcs_emulator as emulator

# The emulator's fixtures (a conftest.py may register the module as a plugin instead).
gcs_emulator = emulator.gcs_emulator
gcs_bucket = emulator.gcs_bucket
FaultProxy = emulator.FaultProxy


@pytest.fixture
def proxy(gcs_bucket: str, gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    proxy = FaultProxy(gcs_emulator)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
    yield proxy
    proxy.close()


def test_transient_errors_on_small_writes_and_reads_are_retried(gcs_bucket: str, proxy: FaultProxy) -> None:
    uri = f"gs://{gcs_bucket}/flaky/a.json"
    proxy.inject(503, times=2, match="/upload/")
    proxy.inject(429, times=1, match="/upload/")
    storage.write_json(uri, {"ok": 1})
    assert [o for _, _, o in proxy.requests_to("/upload/")] == ["503", "503", "429", "ok"]
    proxy.inject("drop", times=1, match="/download/")
    proxy.inject(500, times=1, match="/download/")
    assert storage.read_json(uri) == {"ok": 1}
    assert [o for _, _, o in proxy.requests_to("/download/")] == ["drop", "500", "ok"]


def test_lost_answer_to_a_landed_write_is_not_an_overwrite_error(gcs_bucket: str, proxy: FaultProxy) -> None:
    uri = f"gs://{gcs_bucket}/flaky/landed.bin"
    # The first upload reaches the emulator but its answer is lost; the retry then meets
    # if_generation_match=0 on an object that holds exactly our bytes, which is success.
    proxy.inject("drop_after", times=1, match="/upload/")
    storage.write_bytes(uri, b"payload")
    assert [o for _, _, o in proxy.requests_to("/upload/")][0] == "drop_after"
    assert storage.read_bytes(uri) == b"payload"


def test_resumable_upload_retries_a_failed_chunk(gcs_bucket: str, proxy: FaultProxy, tmp_path: Path) -> None:
    big = tmp_path / "model.safetensors"
    big.write_bytes(os.urandom(storage.RESUMABLE_THRESHOLD + 300_000))
    uri = f"gs://{gcs_bucket}/flaky/model"
    proxy.inject(503, times=1, match="upload_id", method="PUT")  # a chunk of the resumable session
    proxy.inject("drop", times=1, match="upload_id", method="PUT")
    storage.upload_dir(tmp_path, uri)
    session = proxy.requests_to("uploadType=resumable")
    assert session[0][0] == "POST", "a big file goes up as a resumable session"
    chunks = [o for m, _, o in proxy.requests_to("upload_id") if m == "PUT"]
    assert chunks[:2] == ["503", "drop"] and chunks.count("ok") >= 2, chunks
    back = storage.download_dir(uri, tmp_path / "back")
    assert (back / "model.safetensors").read_bytes() == big.read_bytes()


def test_forbidden_fails_fast_naming_the_uri(gcs_bucket: str, proxy: FaultProxy) -> None:
    uri = f"gs://{gcs_bucket}/secret/weights.bin"
    storage.write_bytes(uri, b"x")
    proxy.forbid("secret%2F")  # object names are URL-encoded in paths
    with pytest.raises(PermissionError, match=uri):
        storage.read_bytes(uri)
    assert len(proxy.requests_to("secret%2Fweights.bin")) == 1, "a 403 is not retried"
    with pytest.raises(PermissionError, match=f"gs://{gcs_bucket}/secret"):
        storage.list_files(f"gs://{gcs_bucket}/secret")
    proxy.forbid("/upload/")  # a multipart upload names its object in the body, not the path
    with pytest.raises(PermissionError, match=f"gs://{gcs_bucket}/secret/other.bin"):
        storage.write_bytes(f"gs://{gcs_bucket}/secret/other.bin", b"y")
    assert len(proxy.requests_to("/upload/")) == 2, "only the first write reached GCS, once"


def test_not_found_fails_fast_naming_the_uri(gcs_bucket: str, proxy: FaultProxy, tmp_path: Path) -> None:
    uri = f"gs://{gcs_bucket}/missing/config.json"
    with pytest.raises(FileNotFoundError, match=uri):
        storage.read_bytes(uri)
    # (The client also fetches bucket metadata in the background; only object requests count.)
    assert len(proxy.requests_to("missing%2Fconfig.json")) == 1, "a 404 is not retried"
    with pytest.raises(FileNotFoundError, match="gs://no-bucket-here/x"):
        storage.read_bytes("gs://no-bucket-here/x")
    with pytest.raises(FileNotFoundError, match=f"gs://{gcs_bucket}/missing/model"):
        storage.download_dir(f"gs://{gcs_bucket}/missing/model", tmp_path)


def test_retries_give_up_at_the_deadline(gcs_bucket: str, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"gs://{gcs_bucket}/down/a"
    monkeypatch.setenv("COMMERCE_LM_GCS_RETRY_DEADLINE", "1")
    proxy.inject(503, times=1000, match="down%2Fa")
    with pytest.raises(TimeoutError, match=uri):
        storage.read_bytes(uri)
    assert 2 <= len(proxy.requests_to("down%2Fa")) < 200
