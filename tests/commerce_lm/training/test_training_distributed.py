"""1 process vs 2 processes (torchrun, gloo) and ZeRO stages 0/2/3: same trajectory, loadable exports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml

from commerce_lm.config import load_config, section_for
from commerce_lm.steps import finetune_encoder
from commerce_lm.training import dist
from tests.helpers.training import tiny_model, trained_with_lowest_layer_frozen, write_prepared


def _losses(out):
    return [
        r["loss"] for r in map(json.loads, (out / "train_log.jsonl").read_text().splitlines()) if r["event"] == "step"
    ]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    write_prepared(root / "prepared")
    # No dropout: ranks draw different dropout masks, which would make trajectories differ by design.
    model = tiny_model(root / "model", dropout=0.0)
    section = {"max_length": 32, "epochs": 1, "per_device_batch_size": 8, "learning_rate": 1e-3, "eval_every": 6}
    config = {
        "model": str(model),
        "seed": 5,
        "domain": {"data": "unused", "label": "label", "group_by": ["pair"]},
        "tasks": [{"name": "weapons", "data": "unused", "label": "label"}],
        "finetune": section,
    }
    (root / "cfg.yaml").write_text(yaml.safe_dump(config))
    return root


@pytest.mark.distributed
def test_two_processes_zero3_match_one_process_zero0_and_zero2(work):
    from transformers import AutoModel, AutoTokenizer

    # Same global batch (8): 2 ranks x 4 documents, ZeRO-3, launched through --num-procs (torchrun).
    command = [
        sys.executable, "-m", "commerce_lm.cli", "finetune-encoder",
        "--config", str(work / "cfg.yaml"), "--prepared", str(work / "prepared"), "--output", str(work / "two"),
        "--num-procs", "2", "--set", "finetune.per_device_batch_size=4", "--set", "finetune.zero_stage=3",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=dist.child_env())
    assert done.returncode == 0, done.stderr[-4000:]
    two = json.loads((work / "two" / "metrics.json").read_text())
    assert two["world_size"] == 2 and two["zero_stage"] == 3 and len(two["per_process"]) == 2

    for stage in (0, 2):
        cfg = load_config(work / "cfg.yaml", [f"finetune.zero_stage={stage}"])
        section = section_for("finetune-encoder", cfg)
        one = finetune_encoder.run(section, str(work / "prepared"), str(work / f"one-z{stage}"))
        assert one["world_size"] == 1 and one["global_steps"] == two["global_steps"] == 12
        assert _losses(work / f"one-z{stage}") == pytest.approx(_losses(work / "two"), abs=1e-4)
        assert one["val_loss"] == pytest.approx(two["val_loss"], abs=1e-4)

    # Every export (ZeRO-3 consolidated from 2 ranks included) loads with its tokenizer and agrees.
    outputs = []
    for name in ("two", "one-z0", "one-z2"):
        encoder = AutoModel.from_pretrained(work / name / "model").eval()
        tokenizer = AutoTokenizer.from_pretrained(work / name / "model")
        with torch.no_grad():
            outputs.append(encoder(**tokenizer(["cheap phone charger"], return_tensors="pt")).last_hidden_state)
    assert torch.allclose(outputs[0], outputs[1], atol=1e-4)
    assert torch.allclose(outputs[1], outputs[2], atol=1e-4)
    ds = json.loads((work / "two" / "deepspeed_config.json").read_text())
    assert ds["zero_optimization"]["stage"] == 3 and ds["train_batch_size"] == 8


@pytest.mark.distributed
def test_every_objective_trains_under_zero3_on_two_processes(work):
    """SupCon, SimCSE and group contrast gather across ranks; masked-LM adds its own pass.

    The frozen copy of the PLM stays outside ZeRO.
    """
    objective = json.dumps(
        {"cross_entropy": 1, "supervised_contrastive": 0.5, "instance_contrastive": 1, "group_contrastive": 1,
         "mlm": 0.5, "stay_near_pretrained": 1}
    )  # fmt: skip
    command = [
        sys.executable, "-m", "commerce_lm.cli", "finetune-encoder",
        "--config", str(work / "cfg.yaml"), "--prepared", str(work / "prepared"), "--output", str(work / "all"),
        "--num-procs", "2", "--set", "finetune.per_device_batch_size=4", "--set", "finetune.zero_stage=3",
        "--set", "finetune.max_steps=3", "--set", f"finetune.objective={objective}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=dist.child_env())
    assert done.returncode == 0, done.stderr[-4000:]
    steps = [
        r for r in map(json.loads, (work / "all" / "train_log.jsonl").read_text().splitlines()) if r["event"] == "step"
    ]
    assert len(steps) == 3
    for term in ("cross_entropy", "supervised_contrastive", "instance_contrastive", "group_contrastive", "mlm",
                 "stay_near_pretrained"):  # fmt: skip
        assert all(r[term] >= 0 for r in steps), term
    metrics = json.loads((work / "all" / "metrics.json").read_text())
    assert metrics["objective"]["mlm"] == 0.5 and metrics["world_size"] == 2
    from safetensors import safe_open
    from transformers import AutoModel

    # The export holds the encoder alone: no training head, no masked-LM head, no wrapper prefix.
    (weights,) = (work / "all" / "model").glob("*.safetensors")
    with safe_open(str(weights), "pt") as handle:
        keys = list(handle.keys())
    assert keys and not any(k.startswith(("head.", "mlm_head.", "encoder.encoder.")) for k in keys)
    assert AutoModel.from_pretrained(work / "all" / "model").config.hidden_size == 32


@pytest.mark.distributed
@pytest.mark.parametrize(("stage", "adapters"), [(2, False), (3, False), (3, True)])
def test_frozen_parameters_train_and_checkpoint_on_two_processes(work, stage, adapters):
    """ZeRO partitions only what the optimizer holds; frozen weights come back from every rank untouched,
    and low-rank adapters partitioned by ZeRO-3 are gathered and merged on export."""
    from transformers import AutoModel

    out = work / f"frozen-z{stage}{'-lora' if adapters else ''}"
    command = [
        sys.executable, "-m", "commerce_lm.cli", "finetune-encoder",
        "--config", str(work / "cfg.yaml"), "--prepared", str(work / "prepared"), "--output", str(out),
        "--num-procs", "2", "--set", "finetune.per_device_batch_size=4", "--set", f"finetune.zero_stage={stage}",
        "--set", "finetune.max_steps=4", "--set", "finetune.launch.checkpoint_every=2",
        "--set", "finetune.freeze_embeddings=true", "--set", "finetune.freeze_layers=1",
        *(["--set", "finetune.lora_rank=4"] if adapters else []),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=dist.child_env())
    assert done.returncode == 0, done.stderr[-4000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_steps"] == 4
    assert metrics["trainable_parameters"] < metrics["parameters"]
    config = yaml.safe_load((work / "cfg.yaml").read_text())
    plm = AutoModel.from_pretrained(config["model"]).state_dict()
    for name, value in AutoModel.from_pretrained(out / "model").state_dict().items():
        # The pooler is unused by the pooled vector: its change is weight decay alone, per ZeRO stage.
        if not name.startswith("pooler."):
            assert torch.equal(value, plm[name]) != trained_with_lowest_layer_frozen(name, adapters), name
