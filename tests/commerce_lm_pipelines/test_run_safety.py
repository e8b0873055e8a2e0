"""``commerce-lm run`` follows every step's output rule: it replaces only a folder an earlier run made."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from commerce_lm import cli, names
from commerce_lm.config import ConfigError
from commerce_lm.storage import OutputError
from commerce_lm_pipelines import local_run

DATA = "id,text,label\n" + "".join(f"r{i},listing text number {i},{i % 2}\n" for i in range(40))


def _user_folder(root: Path) -> Path:
    """A folder holding a user's config, data and model, as in the issue."""
    folder = root / "project"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "config.json").write_text("{}")
    (folder / "listings.csv").write_text(DATA)
    spec = "{data: listings.csv, label: label}"
    (folder / "run.yaml").write_text(f"model: model\ndomain: {spec}\ntasks: [{{name: t, {spec[1:-1]}}}]\n")
    return folder


def _contents(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _run(capsys, config: Path, out: Path, *extra: str) -> tuple[int, str]:
    code = cli.main(["run", "--config", str(config), "--output", str(out), *extra])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("overwrite", [(), ("--overwrite",)])
def test_run_never_replaces_a_folder_of_the_users(tmp_path, capsys, overwrite):
    folder = _user_folder(tmp_path)
    before = _contents(folder)
    code, err = _run(capsys, folder / "run.yaml", folder, "--cache-dir", str(tmp_path / "cache"), *overwrite)
    assert code == 2 and str(folder) in err and len(err.strip().splitlines()) == 1
    assert _contents(folder) == before


def test_run_refuses_a_non_empty_folder_that_no_run_made(tmp_path, capsys):
    folder, other = _user_folder(tmp_path), tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    code, err = _run(capsys, folder / "run.yaml", other, "--cache-dir", str(tmp_path / "cache"))
    assert code == 2 and f"no {names.COMPLETE_MARKER} marker of run" in err
    assert _contents(other) == ["notes.txt"]


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("project/model/out", "inside the input folder"),  # inside the model
        ("project/out", "inside the input folder"),  # inside the config's (and the data's) folder
        ("cache/out", "inside the input folder"),  # inside the step cache
        (".", "holds the input"),  # a folder holding the cache and the inputs
    ],
)
def test_run_refuses_an_output_inside_an_input_or_the_cache(tmp_path, capsys, where, says):
    folder = _user_folder(tmp_path)
    out = tmp_path / where
    code, err = _run(capsys, folder / "run.yaml", out, "--cache-dir", str(tmp_path / "cache"), "--overwrite")
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / where / local_run.RUN_CONFIG).exists()


def test_run_with_a_file_as_cache_dir_is_one_line(tmp_path, capsys):
    folder = _user_folder(tmp_path)
    (tmp_path / "cache").write_text("not a folder")
    code, err = _run(capsys, folder / "run.yaml", tmp_path / "out", "--cache-dir", str(tmp_path / "cache"))
    assert code == 2 and "--cache-dir" in err and "unexpected" not in err and len(err.strip().splitlines()) == 1


def test_an_earlier_runs_folder_is_replaced_only_with_overwrite(tmp_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    local_run.claim_run_dir(out, "{}", "first", False, [], cache)
    (out / "kfp-root").mkdir()
    assert json.loads((out / names.COMPLETE_MARKER).read_text())["step"] == "run"
    local_run.claim_run_dir(out, "{}", "first", False, [], cache)  # the same config: reused as it is
    assert (out / "kfp-root").is_dir()
    with pytest.raises(ConfigError, match="--overwrite"):
        local_run.claim_run_dir(out, "{}", "second", False, [], cache)
    local_run.claim_run_dir(out, "{}", "second", True, [], cache)
    assert _contents(out) == [names.COMPLETE_MARKER, local_run.RUN_CONFIG]
    (out / names.COMPLETE_MARKER).unlink()  # no longer a run's folder: never replaced again
    with pytest.raises(OutputError):
        local_run.claim_run_dir(out, "{}", "third", True, [], cache)


def test_a_step_that_fails_on_the_users_data_is_one_line_naming_the_step_and_its_reason(tmp_path):
    folder = _user_folder(tmp_path)
    data = "id,text,label,flag\n" + "".join(f"r{i},listing text number {i},{i % 2},\n" for i in range(40))
    (folder / "listings.csv").write_text(data)
    spec = "data: listings.csv, label: flag"  # all null: every part of prepare-data stops, nothing else runs
    (folder / "run.yaml").write_text(f"model: model\ndomain: {{{spec}}}\ntasks: [{{name: t, {spec}}}]\n")
    command = [sys.executable, "-m", "commerce_lm.cli", "run", "--config", str(folder / "run.yaml")]
    command += ["--output", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert "\x1b" not in line and "unexpected" not in line
    match = re.search(r"step (\S+) failed: DataError: .*null_label.* \(its log: (.+)\)$", line)
    assert match and match.group(1).startswith("prepare-data"), line
    log = Path(match.group(2))
    assert log.is_relative_to(tmp_path / "run" / "kfp-root") and "Traceback" in log.read_text()


def test_the_reason_of_a_failed_step_is_the_last_exception_of_its_log():
    lines = [
        "    Traceback (most recent call last):",
        '      File "x.py", line 1, in <module>',
        "    KeyError: 'a'",
        "    ",
        "    During handling of the above exception, another exception occurred:",
        "    Traceback (most recent call last):",
        '      File "y.py", line 2, in <module>',
        "        raise DataError(...)",
        "    commerce_lm.steps.prepare_data.DataError: 40 of 40 rows rejected",
        "",
    ]
    assert local_run._error_line(lines) == "commerce_lm.steps.prepare_data.DataError: 40 of 40 rows rejected"
    assert local_run._error_line(["no traceback here"]) is None
