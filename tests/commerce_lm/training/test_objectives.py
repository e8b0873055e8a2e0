"""Training objectives: each term's value, the shared forward pass, the registry and the reference recipe."""

from __future__ import annotations

import math
import sys
import types

import pytest
import torch
import torch.nn.functional as F
from pydantic import Field

from commerce_lm import models
from commerce_lm.config import OBJECTIVES, ConfigError, FinetuneConfig, ObjectiveSettings, parse_config
from commerce_lm.embedding.pooling import pool
from commerce_lm.training import objectives
from commerce_lm.training.objectives.base import views
from commerce_lm.training.pooled_model import PooledEncoder
from tests.helpers.training import tiny_model


class Vectors(torch.nn.Module):
    """A stand-in model whose pooled vectors are fixed rows picked by ``input_ids[:, 0]``; counts its calls."""

    def __init__(self, rows: torch.Tensor, num_labels: int = 2) -> None:
        super().__init__()
        self.rows = torch.nn.Parameter(rows.clone())
        self.calls = 0

    def forward(self, input_ids, attention_mask, mlm_positions=None):
        self.calls += 1
        pooled = self.rows[input_ids[:, 0]]
        return type("Out", (), {"pooled": pooled, "logits": pooled[:, :2]})()


def _batch(n: int, labels: list[int]) -> dict:
    return {
        "input_ids": torch.arange(n)[:, None].repeat(1, 3),
        "attention_mask": torch.ones(n, 3, dtype=torch.long),
        "labels": torch.tensor(labels),
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("objectives") / "model", dropout=0.0)


def _context(weights: dict[str, float], **settings) -> objectives.Context:
    """A build context for the objectives ``weights`` names, with fine-tune ``settings`` and run resources."""
    resources = {key: settings.pop(key) for key in ("tokenizer", "load_pretrained") if key in settings}
    return objectives.Context(FinetuneConfig(objective=weights, **settings), **resources)


def _term(name: str, **settings) -> objectives.Objective:
    """Objective ``name`` alone, as the trainer's builder makes it."""
    return objectives.build(_context({name: 1.0}, **settings)).parts[name][1]


class Margin(ObjectiveSettings):
    """A toy objective's settings: one of its own beside the weight."""

    margin: float = Field(default=0.5, gt=0)


class Toy:
    """A toy loss: its margin, on the graph of the pooled vectors."""

    views = 1

    def __init__(self, margin: float) -> None:
        self.margin = margin

    def __call__(self, model, batch):
        return {"toy": views(model, batch)[0].pooled.sum() * 0 + self.margin}


@pytest.fixture
def toy(monkeypatch):
    """Objective ``toy`` added as a new loss is: its settings in the registry, and its module with a build."""
    monkeypatch.setitem(OBJECTIVES, "toy", Margin)
    module = types.ModuleType(f"{objectives.__name__}.toy")
    module.build = lambda settings, context: Toy(settings.margin)
    monkeypatch.setitem(sys.modules, module.__name__, module)


def test_a_loss_registered_once_is_accepted_by_the_config_and_built_by_the_trainer(toy):
    cfg = FinetuneConfig(objective={"cross_entropy": 1.0, "toy": {"weight": 2, "margin": 0.25}})
    assert cfg.objective["toy"] == Margin(weight=2.0, margin=0.25)
    assert cfg.model_dump(mode="json")["objective"] == {"cross_entropy": 1.0, "toy": {"weight": 2.0, "margin": 0.25}}
    assert FinetuneConfig.model_validate_json(cfg.model_dump_json()) == cfg
    assert FinetuneConfig(objective=cfg.objective) == cfg  # validated settings are taken as they are
    assert FinetuneConfig(objective={"toy": 1}).objective["toy"].margin == 0.5  # a bare weight: default settings
    mix = objectives.build(objectives.Context(cfg))
    assert isinstance(mix.parts["toy"][1], Toy) and mix.parts["toy"][0] == 2.0
    terms = mix(Vectors(torch.eye(4)), _batch(4, [0, 1, 0, 1]))
    assert terms["toy"].item() == pytest.approx(0.25)
    assert terms["loss"].item() == pytest.approx(terms["cross_entropy"].item() + 2 * 0.25)
    with pytest.raises(ValueError, match="margin"):
        FinetuneConfig(objective={"toy": {"weight": 1, "margin": 0}})


def test_an_unknown_objective_is_refused_in_one_line_naming_the_known_ones(toy):
    raw = {"model": "m", "domain": {"data": "d", "label": "y"}, "tasks": [{"name": "t", "data": "d", "label": "z"}]}
    with pytest.raises(ConfigError) as error:
        parse_config({**raw, "finetune": {"objective": {"bogus": 1, "mlm": 1}}})
    _, line = str(error.value).splitlines()
    assert line.startswith("  finetune.objective:") and "unknown objective(s) ['bogus']" in line
    assert all(f"'{name}'" in line for name in [*OBJECTIVES, "toy"])


def test_group_contrastive_without_groups_is_refused_in_one_line():
    raw = {"model": "m", "domain": {"data": "d", "label": "y"}, "tasks": [{"name": "t", "data": "d", "label": "z"}]}
    with pytest.raises(ConfigError) as error:
        parse_config({**raw, "finetune": {"objective": {"group_contrastive": 1}}})
    assert "group_contrastive needs domain.group_by" in str(error.value).splitlines()[-1]
    grouped = {**raw, "domain": {**raw["domain"], "group_by": ["relist"]}}
    assert parse_config({**grouped, "finetune": {"objective": {"group_contrastive": 1}}}).finetune.weights() == {
        "group_contrastive": 1.0
    }


def test_the_weights_are_checked_once_in_the_config():
    with pytest.raises(ValueError, match="at least one"):
        FinetuneConfig(objective={"cross_entropy": 0.0})
    with pytest.raises(ValueError, match="at least one"):
        FinetuneConfig(objective={"cross_entropy": 1.0, "mlm": -1.0})
    with pytest.raises(ValueError, match=r"objective\.mlm\n.*valid number"):
        FinetuneConfig(objective={"mlm": "a lot"})


def test_cross_entropy_alone_is_the_reference_recipe(tiny):
    """``{cross_entropy: 1.0}`` with [CLS] pooling: softmax cross-entropy of a linear head on the [CLS] vector."""
    torch.manual_seed(0)
    model = PooledEncoder(models.load_encoder(str(tiny)), "cls", num_labels=3).eval()
    mix = objectives.build(_context({"cross_entropy": 1.0}))
    batch = _batch(4, [0, 1, 2, 1])
    batch["input_ids"] = torch.tensor([[0, 5, 6, 2], [0, 7, 8, 2], [0, 9, 2, 1], [0, 10, 11, 2]])
    batch["attention_mask"] = (batch["input_ids"] != 1).long()
    terms = mix(model, batch)
    with torch.no_grad():
        hidden = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        expected = F.cross_entropy(model.head(hidden[:, 0]), batch["labels"])
    assert set(terms) == {"cross_entropy", "loss"}
    assert terms["loss"].item() == pytest.approx(expected.item(), abs=1e-6)


def test_supervised_contrastive_matches_the_formula():
    rows = F.normalize(torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]]), dim=-1)
    model, labels = Vectors(rows), [0, 0, 1, 2]
    term = _term("supervised_contrastive", temperature=0.5)
    value = term(model, _batch(4, labels))["supervised_contrastive"]
    sims = rows @ rows.T / 0.5
    losses = []
    for i in range(4):
        positives = [p for p in range(4) if p != i and labels[p] == labels[i]]
        if not positives:
            continue  # an anchor alone in its class has nothing to pull toward
        denominator = torch.logsumexp(torch.stack([sims[i, a] for a in range(4) if a != i]), 0)
        losses.append(-sum(sims[i, p] - denominator for p in positives) / len(positives))
    assert value.item() == pytest.approx(torch.stack(losses).mean().item(), abs=1e-5)


def test_instance_contrastive_prefers_its_own_second_view():
    rows = torch.eye(3)
    model = Vectors(rows)
    term = _term("instance_contrastive", temperature=0.05)
    batch = _batch(3, [0, 0, 0])
    batch["views"] = 2
    value = term(model, batch)["instance_contrastive"].item()
    expected = -math.log(math.exp(1 / 0.05) / (math.exp(1 / 0.05) + 2))
    assert value == pytest.approx(expected, abs=1e-5)
    assert model.calls == 1  # both views come from one stacked forward pass


def test_group_contrastive_matches_infonce_with_the_anchors_group_masked():
    # Documents 0, 1 and 2 form one group, 3 and 4 none. Anchor 0's drawn partner is 1; 2 is of its
    # group too, so it is neither the positive nor a negative. Ungrouped documents are their own partner.
    rows = F.normalize(torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.2]]), dim=-1)
    model = Vectors(rows)
    batch = _batch(5, [0] * 5)
    partners = torch.tensor([1, 2, 0, 3, 4])
    batch.update(
        partner_input_ids=partners[:, None].repeat(1, 3),
        partner_attention_mask=torch.ones(5, 3, dtype=torch.long),
        groups=torch.tensor([7, 7, 7, -1, -1]),
    )
    value = _term("group_contrastive", temperature=0.5)(model, batch)["group_contrastive"]
    sims = rows @ rows[partners].T / 0.5
    losses = []
    for i in range(5):
        group = batch["groups"]
        candidates = [j for j in range(5) if j == i or group[j] < 0 or group[j] != group[i]]
        losses.append(torch.logsumexp(sims[i, candidates], 0) - sims[i, i])
    assert value.item() == pytest.approx(torch.stack(losses).mean().item(), abs=1e-5)
    assert model.calls == 2  # the documents, then their partners


def test_stay_near_pretrained_is_zero_at_the_start_and_grows_when_the_encoder_moves(tiny):
    encoder = models.load_encoder(str(tiny))
    model = PooledEncoder(encoder, "mean", num_labels=2).eval()
    term = _term("stay_near_pretrained", pooling="mean", load_pretrained=lambda: models.load_encoder(str(tiny)))
    batch = _batch(4, [0, 1, 0, 1])
    batch["input_ids"] = torch.tensor([[0, 5, 6, 2], [0, 7, 8, 2], [0, 9, 2, 1], [0, 10, 11, 2]])
    batch["attention_mask"] = (batch["input_ids"] != 1).long()
    assert term(model, dict(batch))["stay_near_pretrained"].item() == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():
        for param in encoder.parameters():
            param.add_(0.05 * torch.randn_like(param))
    moved = term(model, dict(batch))["stay_near_pretrained"]
    with torch.no_grad():
        frozen = term.frozen(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        z0 = pool(frozen, batch["attention_mask"], "mean")
        z = model(batch["input_ids"], batch["attention_mask"]).pooled
    expected = ((z - z0).pow(2).sum(-1) / z0.pow(2).sum(-1)).mean()
    assert moved.item() == pytest.approx(expected.item(), rel=1e-5) and moved.item() > 0
    assert not any(p.requires_grad for p in term.frozen.parameters())


def test_mlm_masks_only_real_non_special_tokens(tiny):
    tokenizer = models.load_tokenizer(str(tiny))
    term = _term("mlm", tokenizer=tokenizer, mlm_probability=0.15)
    encoded = tokenizer(
        ["cheap phone charger with cable"] * 64, ["new shoes"] * 64, padding="max_length", max_length=24
    )
    ids, attention = torch.tensor(encoded["input_ids"]), torch.tensor(encoded["attention_mask"])
    torch.manual_seed(0)
    masked, chosen = term.mask(ids, attention)
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    assert not (chosen & (special | (attention == 0))).any()
    share = chosen.sum().item() / (attention.bool() & ~special).sum().item()
    assert 0.08 < share < 0.22
    assert (masked[~chosen] == ids[~chosen]).all()
    assert (masked[chosen] == tokenizer.mask_token_id).float().mean() > 0.6


def test_mlm_trains_through_the_pooled_model(tiny):
    tokenizer = models.load_tokenizer(str(tiny))
    model = PooledEncoder(models.load_encoder(str(tiny)), "cls", num_labels=2, with_mlm=True)
    mix = objectives.build(_context({"mlm": 1.0}, tokenizer=tokenizer))
    encoded = tokenizer(["cheap phone charger with cable", "new shoes"], padding=True, return_tensors="pt")
    batch = {**encoded, "labels": torch.tensor([0, 1])}
    loss = mix(model, batch)["loss"]
    loss.backward()
    assert math.isfinite(loss.item()) and loss.item() > 0
    assert model.mlm_head[-1].weight.grad is not None


def test_a_mix_weights_its_terms_and_shares_one_forward_pass():
    rows = F.normalize(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), dim=-1)
    model = Vectors(rows)
    weights = {"cross_entropy": 0.5, "supervised_contrastive": 2.0, "instance_contrastive": 1.0}
    terms = objectives.build(_context(weights, temperature=0.1))(model, _batch(6, [0, 1, 0, 1, 1, 0]))
    assert model.calls == 1
    expected = sum(w * terms[name] for name, w in weights.items())
    assert terms["loss"].item() == pytest.approx(expected.item(), abs=1e-6)
    # Zero weights drop the term entirely.
    model.calls = 0
    only = objectives.build(_context({"cross_entropy": 1.0, "instance_contrastive": 0.0}))(model, _batch(6, [0] * 6))
    assert set(only) == {"cross_entropy", "loss"} and model.calls == 1


def test_views_are_memoised_per_batch():
    model = Vectors(torch.eye(4))
    batch = _batch(4, [0, 1, 0, 1])
    first = views(model, batch)
    assert views(model, batch) is first and model.calls == 1
