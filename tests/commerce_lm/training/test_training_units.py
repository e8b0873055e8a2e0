"""The data plan, dynamic padding, DeepSpeed config and launcher command: pure functions, no training."""

from __future__ import annotations

import numpy as np
import pytest

from commerce_lm.config import TrainConfig
from commerce_lm.launch.torchrun import maybe_relaunch, torchrun_command
from commerce_lm.training import data, ds_config
from commerce_lm.training.checkpoint import default_root


def _plan(world: int, micro: int, accum: int = 1, n: int = 203, seed: int = 3) -> data.Plan:
    lengths = np.random.default_rng(0).integers(3, 60, size=n)
    return data.Plan(lengths=lengths, seed=seed, micro_batch=micro, accumulation=accum, world_size=world)


def test_plan_is_reproducible_and_covers_each_document_at_most_once_per_epoch():
    plan, again = _plan(2, 4, accum=2), _plan(2, 4, accum=2)
    assert plan.global_batch == 16 and plan.steps_per_epoch == 203 // 16
    epoch = [plan.step_indices(s) for s in range(plan.steps_per_epoch)]
    flat = np.concatenate(epoch)
    assert len(flat) == len(set(flat.tolist())) == 16 * plan.steps_per_epoch
    for step in range(3 * plan.steps_per_epoch):
        assert np.array_equal(plan.step_indices(step), again.step_indices(step))
    # A new epoch is a new order; another seed is another order.
    assert not np.array_equal(plan.step_indices(0), plan.step_indices(plan.steps_per_epoch))
    assert not np.array_equal(plan.step_indices(0), _plan(2, 4, accum=2, seed=4).step_indices(0))


def test_ranks_and_accumulation_steps_partition_the_global_batch_whatever_the_world_size():
    one, two = _plan(1, 8), _plan(2, 4)
    for step in range(2 * one.steps_per_epoch):
        assert np.array_equal(one.step_indices(step), two.step_indices(step))
        parts = [m for rank in range(2) for m in two.micro_batches(step, rank)]
        assert sorted(np.concatenate(parts).tolist()) == sorted(two.step_indices(step).tolist())
    accum = _plan(2, 2, accum=2)
    parts = [m for rank in range(2) for m in accum.micro_batches(0, rank)]
    assert all(len(p) == 2 for p in parts) and len(np.unique(np.concatenate(parts))) == 8


def test_length_grouping_cuts_padding_compared_with_random_batches():
    plan = _plan(1, 8, n=2000)
    lengths = np.asarray(plan.lengths)

    def padding(batches):
        return sum(int(lengths[b].max() * len(b) - lengths[b].sum()) for b in batches)

    grouped = [plan.step_indices(s) for s in range(plan.steps_per_epoch)]
    shuffled = np.random.default_rng(1).permutation(len(lengths))[: 8 * plan.steps_per_epoch].reshape(-1, 8)
    assert padding(grouped) < 0.2 * padding(shuffled)


def test_too_little_data_fails_clearly_and_max_steps_caps():
    with pytest.raises(ValueError, match="fewer than one global batch of 32"):
        _plan(4, 8, n=20).total_steps(1, None)
    assert _plan(1, 8, n=100).total_steps(2.5, None) == 30
    assert _plan(1, 8, n=100).total_steps(2.5, 7) == 7


def test_collate_pads_dynamically_and_counts_real_tokens():
    split = data.Split(
        ids=["a", "b"], input_ids=[np.array([0, 5, 2]), np.array([0, 5, 6, 7, 2])], labels=np.array([1, 0])
    )
    batch = data.collate(split, [0, 1], pad_id=1)
    assert batch["input_ids"].tolist() == [[0, 5, 2, 1, 1], [0, 5, 6, 7, 2]]
    assert batch["attention_mask"].sum().item() == batch["tokens"] == 8
    assert batch["labels"].tolist() == [1, 0]


def _grouped_split() -> data.Split:
    # Groups read as prepare-data writes them ("column:value", null for none).
    import pandas as pd

    frame = pd.DataFrame(
        {
            "id": list("abcdef"),
            "text": ["x"] * 6,
            "label": [0] * 6,
            "group": ["relist:1", None, "relist:1", "translation:9", "relist:1", None],
        }
    )
    tokenizer = lambda texts, **_: {"input_ids": [[0, 2]] * len(texts)}  # noqa: E731
    return data.make_split(tokenizer, frame, max_length=8)


def test_a_partner_is_another_document_of_the_group_or_the_document_itself():
    split = _grouped_split()
    assert split.groups.tolist() == [0, -1, 0, 1, 0, -1]
    drawn = {tuple(data.partners(split, range(6), seed=3, step=step)) for step in range(20)}
    for chosen in drawn:
        assert chosen[1] == 1 and chosen[5] == 5  # in no group
        assert chosen[3] == 3  # alone in its group
        assert all(chosen[i] in {0, 2, 4} - {i} for i in (0, 2, 4))
    assert len({chosen[0] for chosen in drawn}) == 2  # both others of its group are drawn over the steps
    # A document's partner depends on (seed, step, document), not on the micro-batch it is in.
    whole = data.partners(split, range(6), seed=3, step=5)
    assert data.partners(split, [4, 0], seed=3, step=5).tolist() == whole[[4, 0]].tolist()


def test_a_split_without_groups_pairs_every_document_with_itself():
    split = data.Split(ids=["a", "b"], input_ids=[np.array([0, 2])] * 2, labels=np.array([0, 1]))
    batch = data.partner_batch(split, [1, 0], pad_id=1, seed=0, step=0)
    assert batch["groups"].tolist() == [-1, -1]
    assert batch["partner_input_ids"].tolist() == [[0, 2], [0, 2]]


def test_eval_shards_give_every_rank_as_many_rows_and_every_document_once():
    shards = [data.eval_shard(7, rank, 3) for rank in range(3)]
    assert {len(idx) for idx, _ in shards} == {3}
    valid = np.concatenate([idx[ok] for idx, ok in shards])
    assert sorted(valid.tolist()) == list(range(7))


def test_deepspeed_config_follows_the_run_config():
    tcfg = TrainConfig(per_device_batch_size=4, gradient_accumulation_steps=3, zero_stage=2, max_grad_norm=0.5)
    config = ds_config.build(tcfg, world_size=2, precision="bf16")
    assert config["train_batch_size"] == 24 and config["train_micro_batch_size_per_gpu"] == 4
    assert config["gradient_accumulation_steps"] == 3 and config["gradient_clipping"] == 0.5
    assert config["zero_optimization"]["stage"] == 2 and config["bf16"]["enabled"] and not config["fp16"]["enabled"]
    assert "optimizer" not in config and "scheduler" not in config  # torch objects, no JIT-built kernels
    assert ds_config.resolve_precision("bf16", on_gpu=False, bf16_supported=False) == "fp32"
    assert ds_config.resolve_precision("auto", on_gpu=True, bf16_supported=True) == "bf16"
    assert ds_config.resolve_precision("auto", on_gpu=True, bf16_supported=False) == "fp16"
    assert ds_config.resolve_precision("fp16", on_gpu=True, bf16_supported=True) == "fp16"


def test_launcher_relaunches_only_when_asked_and_not_nested(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert maybe_relaunch(1, ["python", "-c", "pass"]) is None
    command = torchrun_command(2, ["python", "-m", "commerce_lm.cli", "finetune-encoder"])
    assert command[-4:] == ["python", "-m", "commerce_lm.cli", "finetune-encoder"]
    assert "--nproc-per-node=2" in command and "--no-python" in command
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    assert maybe_relaunch(2, ["python", "-c", "raise SystemExit(3)"]) is None
    monkeypatch.delenv("TORCHELASTIC_RUN_ID")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.delenv("COMMERCE_LM_SINGLE_PROCESS", raising=False)
    assert maybe_relaunch(2, ["python", "-c", "raise SystemExit(3)"]) is None


def test_checkpoints_live_beside_the_output():
    assert default_root("/runs/a/finetune") == "/runs/a/.finetune.checkpoints"
    assert default_root("gs://bucket/root/finetune/") == "gs://bucket/root/.finetune.checkpoints"


def test_relaunch_runs_the_command_as_n_ranks_and_returns_its_exit_code(monkeypatch, tmp_path):
    import os
    import sys

    from commerce_lm.training import dist

    for name in (*dist.SINGLE_PROCESS_ENV, dist.FILLED_MARKER, "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TOUCH_DIR", str(tmp_path))
    script = "import os, pathlib; pathlib.Path(os.environ['TOUCH_DIR'], os.environ['RANK']).touch()"
    assert maybe_relaunch(2, [sys.executable, "-c", script]) == 0
    assert sorted(os.listdir(tmp_path)) == ["0", "1"]
    assert maybe_relaunch(2, [sys.executable, "-c", "raise SystemExit(3)"]) != 0


def test_a_child_does_not_reuse_the_world_its_parent_filled_in(monkeypatch):
    """A pipeline step spawned by a process that trained in-process must not join its old port."""
    import os
    import socket

    from commerce_lm.training import dist

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        parent_port = str(held.getsockname()[1])
        monkeypatch.setenv(dist.FILLED_MARKER, str(os.getpid() + 1))  # filled by another process
        for name, value in dict(
            RANK="0",
            WORLD_SIZE="1",
            LOCAL_RANK="0",
            LOCAL_WORLD_SIZE="1",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=parent_port,
        ).items():
            monkeypatch.setenv(name, value)
        assert not dist.under_launcher()
        dist._fill_single_process_env()
        assert os.environ["MASTER_PORT"] != parent_port
        assert os.environ[dist.FILLED_MARKER] == str(os.getpid())


def test_a_remote_checkpoint_store_leaves_no_staging_folder_behind_even_when_never_closed():
    """A gs:// store stages checkpoints in /tmp; a run that fails before close() must not leave it there."""
    import gc

    from commerce_lm.training.checkpoint import CheckpointStore
    from commerce_lm.training.dist import DistInfo

    closed = CheckpointStore("gs://bucket/ckpt", keep=1, info=DistInfo(0, 0, 1, "cpu"))
    staging = closed._local_dir()
    assert staging.is_dir()
    closed.close()
    assert not staging.exists()
    failed = CheckpointStore("gs://bucket/ckpt", keep=1, info=DistInfo(0, 0, 1, "cpu"))
    staging = failed._local_dir()
    del failed  # a failed run drops its store without closing it
    gc.collect()
    assert not staging.exists()


def test_a_prepared_table_without_a_required_column_is_refused_naming_the_file(tmp_path):
    import pandas as pd

    from commerce_lm.training.classifier_run import read_table

    path = tmp_path / "weapons.parquet"
    pd.DataFrame({"id": ["a"], "text": ["x"], "split": ["train"]}).to_parquet(path)
    with pytest.raises(ValueError) as error:
        read_table(str(path))
    # lang and group are optional: neither is asked for.
    assert str(error.value) == f"{path}: missing column(s) ['label']; expected ['id', 'text', 'split', 'label']"
    pd.DataFrame({"id": ["a"], "text": ["x"], "split": ["train"], "label": [1]}).to_parquet(path)
    assert list(read_table(str(path)).columns) == ["id", "text", "split", "label"]
