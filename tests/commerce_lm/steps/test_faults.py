"""A step killed at any moment never leaves a half artifact, and a rerun equals an uninterrupted run."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from commerce_lm import names
from commerce_lm.demo import corpus as demo_data


def _outputs(folder):
    """Every output table and JSON file of a prepared folder (metrics.json holds timings: left out)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != names.METRICS_JSON)
    return {
        str(p.relative_to(folder)): (pd.read_parquet(p) if p.suffix == ".parquet" else p.read_text()) for p in files
    }


@pytest.fixture(scope="module")
def big_run_dir(tmp_path_factory, tiny_run_dir):
    folder = tmp_path_factory.mktemp("faults")
    shutil.copy(tiny_run_dir / "tiny.yaml", folder / "tiny.yaml")
    shutil.copytree(tiny_run_dir / "tiny-xlmr", folder / "tiny-xlmr")
    demo_data.write(folder / "listings.parquet", n_items=4000, seed=5)
    return folder


def _prepare_command(run_dir, out):
    return [
        sys.executable,
        "-m",
        "commerce_lm.cli",
        "prepare-data",
        "--config",
        str(run_dir / "tiny.yaml"),
        "--output",
        str(out),
    ]


def test_prepare_data_killed_at_any_moment_then_rerun(big_run_dir, tmp_path):
    clean = tmp_path / "clean"
    subprocess.run(_prepare_command(big_run_dir, clean), check=True, capture_output=True)
    expected = _outputs(clean)
    out = tmp_path / "killed"
    for delay in (0.5, 2.0, 3.5, 5.0):
        process = subprocess.Popen(
            _prepare_command(big_run_dir, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        # Whatever the moment, the output is absent or complete: never half-written.
        if out.exists():
            assert _outputs(out).keys() == expected.keys()
    subprocess.run(_prepare_command(big_run_dir, out), check=True, capture_output=True)
    got = _outputs(out)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(got[name], value)
        else:
            assert got[name] == value.replace(str(clean), str(out)), name
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == [], "a rerun cleans the staging folders of killed runs"


def test_models_load_only_safetensors(tmp_path, tiny_xlmr):
    from commerce_lm import models

    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_xlmr, pickled)
    import torch
    from safetensors.torch import load_file

    weights = load_file(pickled / "model.safetensors")
    (pickled / "model.safetensors").unlink()
    torch.save(weights, pickled / "pytorch_model.bin")
    with pytest.raises(OSError):
        models.load_encoder(str(pickled))
    assert models.SAFE_LOAD_KWARGS == {"use_safetensors": True, "trust_remote_code": False}
    assert os.path.exists(pickled / "pytorch_model.bin")


def _extract_command(run_dir, prepared, out, shard):
    return [
        sys.executable,
        "-m",
        "commerce_lm.cli",
        "extract-embeddings",
        "--config",
        str(run_dir / "tiny.yaml"),
        "--prepared",
        str(prepared),
        "--output",
        str(out),
        "--shard",
        str(shard),
        "--num-shards",
        "2",
    ]


def test_extract_embeddings_killed_then_rerun_resumes_finished_shards(big_run_dir, tmp_path):
    from commerce_lm.steps import extract_embeddings

    prepared = tmp_path / "prepared"
    subprocess.run(_prepare_command(big_run_dir, prepared), check=True, capture_output=True)
    clean = [tmp_path / f"clean-{shard}" for shard in (0, 1)]
    for shard, out in enumerate(clean):
        subprocess.run(_extract_command(big_run_dir, prepared, out, shard), check=True, capture_output=True)
    parts = [tmp_path / f"part-{shard}" for shard in (0, 1)]
    subprocess.run(_extract_command(big_run_dir, prepared, parts[0], 0), check=True, capture_output=True)
    finished = (parts[0] / names.MANIFEST_JSON).stat().st_mtime_ns
    for delay in (1.0, 4.0):  # shard 1 dies mid-way, at different moments
        process = subprocess.Popen(
            _extract_command(big_run_dir, prepared, parts[1], 1), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert not parts[1].exists() or (parts[1] / names.MANIFEST_JSON).exists()
    for shard in (0, 1):  # the rerun of the whole fan-out
        subprocess.run(_extract_command(big_run_dir, prepared, parts[shard], shard), check=True, capture_output=True)
    assert (parts[0] / names.MANIFEST_JSON).stat().st_mtime_ns == finished, "a finished shard is not redone"
    got = extract_embeddings.gather([str(p) for p in parts], str(prepared), str(tmp_path / "got"))
    want = extract_embeddings.gather([str(p) for p in clean], str(prepared), str(tmp_path / "want"))
    assert got["count"] == want["count"]
    a = extract_embeddings.load_embeddings(str(tmp_path / "got"))
    b = extract_embeddings.load_embeddings(str(tmp_path / "want"))
    assert a.ids == b.ids
    import numpy as np

    np.testing.assert_allclose(a.vectors, b.vectors, rtol=1e-5, atol=1e-6)


def test_unreadable_gcs_input_names_the_uri(tmp_path, gcs_bucket):
    from commerce_lm import config
    from commerce_lm.data.readers import InputError
    from commerce_lm.steps import prepare_data

    uri = f"gs://{gcs_bucket}/dumps/missing.parquet"
    cfg = config.parse_config(
        {"model": "m", "domain": {"data": uri, "label": "y"}, "tasks": [{"name": "t", "data": uri, "label": "y"}]}
    )
    with pytest.raises(InputError, match=uri):
        prepare_data.run(cfg, str(tmp_path / "out"))
