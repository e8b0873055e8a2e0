"""The compiled pipeline's DAG is the one recorded in ``dag.json``: tasks, their dependencies, parameters,
artifacts, caching and retry settings, images and Kubernetes settings; only the component bodies and
the code versions may differ (:mod:`tests.helpers.ir`).

A DAG changed on purpose is recorded anew with ``python -m tests.helpers.ir >
tests/commerce_lm_pipelines/dag.json``, and the diff shows the change in review.
"""

import json
from pathlib import Path

from tests.helpers.ir import CODE, VERSION, dag

RECORDED = Path(__file__).with_name("dag.json")


def test_the_compiled_dag_is_the_recorded_one(ir_documents):
    recorded = json.loads(RECORDED.read_text())
    now = dag(*ir_documents)
    assert now["platform"] == recorded["platform"]
    for part in ("root", "components", "deploymentSpec", "pipelineInfo", "schemaVersion", "sdkVersion"):
        assert now["pipeline"].get(part) == recorded["pipeline"].get(part), part
    assert now == recorded


def test_the_comparison_sees_a_changed_dag(ir_documents):
    spec, platform = ir_documents
    recorded = dag(spec, platform)
    spec["root"]["dag"]["tasks"]["train-heads"]["dependentTasks"].append("finetune-baseline")
    assert dag(spec, platform) != recorded
    # ...and not what is normalised away: the component bodies and the code versions.
    executor = spec["deploymentSpec"]["executors"]["exec-train-heads"]["container"]
    executor["command"] = ["sh", "-c", "something else"]
    assert dag(spec, platform)["pipeline"]["deploymentSpec"] == recorded["pipeline"]["deploymentSpec"]
    assert CODE in json.dumps(recorded) and VERSION in json.dumps(recorded)
