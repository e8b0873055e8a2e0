"""A step replaces only an earlier output of its own; every user error is one line and status 2."""

import json
import os
import subprocess
import sys

import pytest

from commerce_lm import cli, names, storage

DATA = "id,text,label\n" + "".join(f"r{i},listing text number {i},{i % 2}\n" for i in range(120))


def _config(tmp_path, data):
    spec = {"data": str(data), "label": "label"}
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"model": "m", "domain": spec, "tasks": [{"name": "t", **spec}]}))
    return path


def _prepare(config, output, capsys):
    code = cli.main(["prepare-data", "--config-json", config.read_text(), "--output", str(output)])
    return code, capsys.readouterr().err


def _user_folder(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "listings.csv").write_text(DATA)
    (folder / "notes.txt").write_text("keep me")
    return folder


def test_a_folder_that_is_not_an_earlier_output_is_never_replaced(tmp_path, capsys):
    folder = _user_folder(tmp_path)
    code, err = _prepare(_config(tmp_path, folder / "listings.csv"), folder, capsys)
    assert code == 2 and str(folder) in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in folder.iterdir()) == ["listings.csv", "notes.txt"]


def test_an_existing_file_is_never_replaced_or_renamed(tmp_path, capsys):
    folder = _user_folder(tmp_path)
    code, err = _prepare(_config(tmp_path, folder / "listings.csv"), folder / "notes.txt", capsys)
    assert code == 2 and "refusing to replace a file" in err
    assert (folder / "notes.txt").read_text() == "keep me" and len(list(folder.iterdir())) == 2


def test_output_inside_an_input_folder_is_refused(tmp_path, capsys):
    folder = _user_folder(tmp_path)
    (folder / "notes.txt").unlink()
    code, err = _prepare(_config(tmp_path, folder), folder / "prepared", capsys)
    assert code == 2 and "inside the input folder" in err and not (folder / "prepared").exists()


def test_an_earlier_output_of_the_same_step_is_replaced_but_not_another_steps(tmp_path, capsys):
    folder = _user_folder(tmp_path)
    config, out = _config(tmp_path, folder / "listings.csv"), tmp_path / "prepared"
    assert _prepare(config, out, capsys)[0] == 0
    assert json.loads((out / names.COMPLETE_MARKER).read_text())["step"] == "prepare-data"
    (out / "stale.txt").write_text("from the first run")
    assert _prepare(config, out, capsys)[0] == 0 and not (out / "stale.txt").exists()
    (out / names.COMPLETE_MARKER).write_text(json.dumps({"step": "train-heads"}))
    code, err = _prepare(config, out, capsys)
    assert code == 2 and "not an earlier output of prepare-data" in err


def test_output_dot_is_one_line(tmp_path, capsys, monkeypatch):
    folder = _user_folder(tmp_path)
    monkeypatch.chdir(folder)
    code, err = _prepare(_config(tmp_path, folder / "listings.csv"), ".", capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and (folder / "notes.txt").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_is_one_line(tmp_path, capsys):
    folder = _user_folder(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, err = _prepare(_config(tmp_path, folder / "listings.csv"), locked / "out", capsys)
    assert code == 2 and str(locked / "out") in err


def test_gcs_prefix_holding_other_objects_is_never_replaced(tmp_path, gcs_bucket):
    uri = f"gs://{gcs_bucket}/users-data"
    storage.write_bytes(f"{uri}/keep.csv", b"precious")
    with pytest.raises(storage.OutputError, match=uri), storage.staged_dir(uri, "prepare-data") as stage:
        (stage / "x").write_text("x")
    assert storage.list_files(uri) == [f"{uri}/keep.csv"]


def test_gcs_output_without_credentials_names_the_uri(tmp_path):
    folder = _user_folder(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}
    env["GOOGLE_APPLICATION_CREDENTIALS"] = str(tmp_path / "missing.json")
    uri = "gs://no-such-bucket-commerce-lm/out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "commerce_lm.cli",
            "prepare-data",
            "--config",
            str(_config(tmp_path, folder / "listings.csv")),
        ]
        + ["--output", uri],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2 and uri in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["--set", "prepare.batch_rows=[1,"],
        ["--set", "prepare..x=1"],
    ],
)
def test_malformed_overrides_are_one_line(tmp_path, capsys, argv):
    config = tmp_path / "run.yaml"
    config.write_text("model: m\ndomain: {data: d.csv, label: y}\ntasks: [{name: t, data: d.csv, label: y}]\n")
    code = cli.main(["prepare-data", "--config", str(config), *argv, "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "override" in err and len(err.strip().splitlines()) == 1


def test_malformed_config_json_is_one_line(tmp_path, capsys):
    code = cli.main(["prepare-data", "--config-json", "{not json", "--output", str(tmp_path / "o")])
    assert code == 2 and "--config-json: not valid JSON" in capsys.readouterr().err


def test_model_folder_without_safetensors_is_one_line(tmp_path):
    from commerce_lm.models import ModelError, load_encoder

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelError, match=str(tmp_path)):
        load_encoder(str(tmp_path))
