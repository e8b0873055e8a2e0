"""Freezing parts of the PLM and interpolating back toward it (training.adapt), through the step too."""

from __future__ import annotations

import json

import pytest
import torch

from commerce_lm import models
from commerce_lm.config import ConfigError, FinetuneConfig, section_for, section_from_json
from commerce_lm.steps import finetune_encoder
from commerce_lm.training import adapt, engine
from commerce_lm.training.pooled_model import PooledEncoder
from tests.helpers.training import run_config, tiny_model, trained_with_lowest_layer_frozen, write_prepared

WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapt")
    # No dropout, so two runs of the same settings give the same weights.
    return write_prepared(root / "prepared"), tiny_model(root / "model", dropout=0.0), root


def _config(model, **finetune):
    """The tiny run config, 4 steps, with ``finetune`` settings the baseline section does not have."""
    cfg = run_config(model, max_steps=4)
    cfg.finetune = FinetuneConfig.model_validate({**cfg.finetune.model_dump(), **finetune})
    return cfg


def _weights(folder) -> dict[str, torch.Tensor]:
    return models.load_encoder(str(folder)).state_dict()


def test_frozen_parameters_are_left_out_of_the_optimizer(setup):
    _, model, _ = setup
    wrapped = PooledEncoder(models.load_encoder(str(model)), "mean", num_labels=3)
    frozen = adapt.freeze(wrapped.encoder, embeddings=True, layers=1)

    assert WORD_EMBEDDINGS in frozen and all(not n.startswith("encoder.layer.1.") for n in frozen)
    assert any(n.startswith("encoder.layer.0.") for n in frozen)
    # Position embeddings and the embedding norm stay trainable (see adapt.freeze).
    assert "embeddings.position_embeddings.weight" not in frozen
    params = dict(wrapped.encoder.named_parameters())
    assert all(not params[n].requires_grad for n in frozen)
    adamw, _ = engine.optimizer(wrapped, run_config(model).finetune, total_steps=4)
    held = {id(p) for group in adamw.param_groups for p in group["params"]}
    assert not held & {id(params[n]) for n in frozen}
    assert id(params["encoder.layer.1.output.dense.weight"]) in held and id(wrapped.head.weight) in held


@pytest.mark.parametrize("task_model", ["pooled", "classifier"])
def test_the_fresh_heads_learn_at_their_own_rate(setup, task_model):
    _, model, _ = setup
    if task_model == "pooled":
        wrapped = PooledEncoder(models.load_encoder(str(model)), "mean", num_labels=3)
    else:
        wrapped = models.load_classifier(str(model), 3)
    heads = {id(p) for p in wrapped.parameters()} - {id(p) for p in wrapped.base_model.parameters()}
    assert heads
    tcfg = FinetuneConfig.model_validate({**run_config(model).finetune.model_dump(), "head_learning_rate": 1e-2})
    adamw, _ = engine.optimizer(wrapped, tcfg, total_steps=4)
    rates = {id(p): group["initial_lr"] for group in adamw.param_groups for p in group["params"]}
    assert {rates[i] for i in heads} == {1e-2}
    assert {rate for i, rate in rates.items() if i not in heads} == {tcfg.learning_rate}
    assert len(rates) == sum(p.requires_grad for p in wrapped.parameters())
    # Unset, every parameter learns at learning_rate.
    adamw, _ = engine.optimizer(wrapped, run_config(model).finetune, total_steps=4)
    assert {group["initial_lr"] for group in adamw.param_groups} == {tcfg.learning_rate}


def test_freezing_more_layers_than_the_encoder_has_names_the_key(setup):
    _, model, _ = setup
    with pytest.raises(ValueError, match=r"finetune.freeze_layers is 3, but the encoder has only 2 layers"):
        adapt.freeze(models.load_encoder(str(model)), embeddings=False, layers=3)


def test_adapters_on_a_model_without_a_layer_stack_name_the_key():
    with pytest.raises(ValueError, match=r"^Linear has no encoder.layer stack: finetune.lora_rank needs one$"):
        adapt.add_adapters(torch.nn.Linear(4, 4), rank=2, alpha=4.0)


def test_interpolation_mixes_tensor_by_tensor():
    tuned = {"w": torch.tensor([2.0, 4.0]), "ids": torch.tensor([0, 1])}
    plm = {"w": torch.tensor([0.0, 2.0]), "ids": torch.tensor([5, 6])}
    mid = adapt.interpolate(tuned, plm, 0.5)
    assert torch.equal(mid["w"], torch.tensor([1.0, 3.0])) and torch.equal(mid["ids"], tuned["ids"])
    assert adapt.interpolate(tuned, plm, 1.0) is tuned
    assert torch.allclose(adapt.interpolate(tuned, plm, 0.25)["w"], torch.tensor([0.5, 2.5]))
    with pytest.raises(ValueError, match="interpolation"):
        adapt.interpolate(tuned, plm, 0.0)
    with pytest.raises(ValueError, match="shape"):
        adapt.interpolate(tuned, {**plm, "w": torch.zeros(3)}, 0.5)


@pytest.mark.parametrize("value", [0, -0.1, 1.5])
def test_an_interpolation_outside_zero_one_is_refused_naming_the_key(value):
    config = {"model": "m", "seed": 1, "domain": {"data": "d", "label": "y"}, "finetune": {"interpolation": value}}
    with pytest.raises(ConfigError, match="finetune.interpolation"):
        section_from_json("finetune-encoder", json.dumps(config))


def test_frozen_weights_leave_training_unchanged_and_interpolation_exports_the_midpoint(setup):
    prepared, model, root = setup
    frozen = _config(model, freeze_embeddings=True, freeze_layers=1)
    metrics = finetune_encoder.run(section_for("finetune-encoder", frozen), str(prepared), str(root / "frozen"))
    plm, tuned = _weights(model), _weights(root / "frozen" / "model")
    assert metrics["trainable_parameters"] < metrics["parameters"]
    for name, value in tuned.items():
        if not name.startswith("pooler."):  # unused by the pooled vector: only weight decay moves it
            assert torch.equal(value, plm[name]) != trained_with_lowest_layer_frozen(name), name

    half = _config(model, freeze_embeddings=True, freeze_layers=1, interpolation=0.5)
    metrics = finetune_encoder.run(section_for("finetune-encoder", half), str(prepared), str(root / "half"))
    mixed = _weights(root / "half" / "model")
    assert metrics["interpolation"] == 0.5
    for name, value in mixed.items():
        assert torch.allclose(value, (tuned[name] + plm[name]) / 2, atol=1e-6), name

    # The benchmark's re-export (no training) gives the same folder, pooling declaration included.
    adapt.interpolate_folder(str(root / "frozen" / "model"), str(model), 0.5, str(root / "again"))
    for name, value in _weights(root / "again").items():
        assert torch.allclose(value, mixed[name], atol=1e-6), name
    assert (root / "again" / "modules.json").read_text() == (root / "half" / "model" / "modules.json").read_text()


def test_merged_adapters_compute_what_the_adapted_encoder_did(setup):
    _, model, _ = setup
    adapted = adapt.add_adapters(models.load_encoder(str(model)), rank=2, alpha=4.0)
    torch.manual_seed(0)
    with torch.no_grad():  # B starts at zero (the PLM itself): give every update something to add
        for name, param in adapted.named_parameters():
            if "lora_B" in name:
                param.normal_()
    adapted.eval()
    plain = models.load_encoder(str(model)).eval()
    plain.load_state_dict(adapt.merged_state(adapted.state_dict(), plain.config, rank=2, alpha=4.0))
    ids = torch.randint(5, plain.config.vocab_size, (2, 7))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        want = adapted(input_ids=ids, attention_mask=mask).last_hidden_state
        got = plain(input_ids=ids, attention_mask=mask).last_hidden_state
        untouched = models.load_encoder(str(model)).eval()(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got, untouched, atol=1e-3)


def test_adapters_train_alone_and_export_a_plain_encoder(setup):
    prepared, model, root = setup
    cfg = _config(model, lora_rank=2, lora_alpha=4.0, freeze_layers=1)
    metrics = finetune_encoder.run(section_for("finetune-encoder", cfg), str(prepared), str(root / "lora"))
    plm, tuned = _weights(model), _weights(root / "lora" / "model")
    assert metrics["lora_rank"] == 2
    # Trained: rank-2 updates of layer 1's linear maps, and the domain head (3 labels); nothing else.
    encoder = models.load_encoder(str(model))
    layer = encoder.encoder.layer[1]
    adapted = [m for m in layer.modules() if isinstance(m, torch.nn.Linear)]
    assert len(adapted) == 6  # query, key, value, attention output, intermediate, output
    head = 3 * encoder.config.hidden_size + 3
    assert metrics["trainable_parameters"] == sum(2 * (m.in_features + m.out_features) for m in adapted) + head
    assert set(tuned) == set(plm)  # the export is a plain encoder: no adapter names
    for name, value in tuned.items():
        assert torch.equal(value, plm[name]) != trained_with_lowest_layer_frozen(name, adapters=True), name
