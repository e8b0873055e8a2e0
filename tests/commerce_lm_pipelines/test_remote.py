"""submit / schedule / runs against a local stand-in of the KFP v2beta1 REST API (``fake_kfp``).

Nothing of ``src/commerce_lm_pipelines/remote.py`` or ``kfp.Client`` is replaced.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

kfp = pytest.importorskip("kfp")
from kfp import dsl  # noqa: E402

from commerce_lm_pipelines import auth as kfp_auth  # noqa: E402
from commerce_lm_pipelines import commands, cron, remote  # noqa: E402
from tests.fakes.fake_kfp import API, FakeKfp  # noqa: E402
from tests.helpers.paths import REPO  # noqa: E402


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
    definitions = sorted((REPO / "deploy").rglob("recurring-run*.yaml"))
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
    config = next((p for p in [REPO / "configs" / "tiny.yaml", REPO / "configs" / "demo.yaml"] if p.is_file()), None)
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
    definition = REPO / "deploy" / "overlays" / "prod" / "score-run.yaml"
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
