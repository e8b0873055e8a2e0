"""Ablation of the domain fine-tuning objective: does each encoder's frozen vectors beat the PLM's?

For one run config (the demo, or MARC/AMCD from ../shared/datasets), it prepares the data once,
embeds it with the off-the-shelf encoder (pooled as it declares, and with [CLS]), then, for every
objective below, fine-tunes the encoder, embeds with it, trains the linear heads and runs KNN: the
pipeline's own steps, through the `commerce-lm` command line. It prints one table: a row per
objective, PR AUC per task and F1 per similarity set on *test*, their differences from the PLM, the
validation margin used for the choice, and train seconds.

The choice is made on validation only: a variant qualifies when, on validation, no task's PR AUC
falls more than 0.005 below the PLM's and no similarity set's F1 falls below 0.97 of the PLM's; among
those it keeps the best mean relative gain; when none qualifies, the one whose worst relative loss is
smallest (do no harm first). Test numbers are printed
beside, never used. `docs/objectives.md` records what it chose for each shipped config.

    python benchmarks/objectives.py --config configs/demo.yaml --out outputs/bench/objectives-demo
    python benchmarks/objectives.py --config configs/marc.yaml --out outputs/bench/objectives-marc \
        --variants ce,mix-0.1,mix-0.3,mix-1

The peer in the same run is the PLM itself (both poolings) and the reference recipe (cross-entropy
alone, [CLS]).

How far the encoder moves from the PLM is chosen the same way. The variants `config`, `pool-*` and
`freeze-*` keep the config's own objective and change one knob (pooling; frozen word embeddings,
`freeze_embeddings`; the lowest N layers frozen, `freeze_layers`); `lora-8` trains rank-8 adapters
instead of the weights (`lora_rank`), at the rate adapters want. Every trained variant is then
interpolated back toward the PLM in weight space (WiSE-FT, `finetune.interpolation`) at each of
`--alphas` without training again: re-exported, re-embedded and scored as rows `VARIANT@ALPHA`, so the
mixing weight is chosen on validation like everything else. `--set` overrides reach every step:

    python benchmarks/objectives.py --config configs/demo.yaml --out outputs/bench/adapt-demo \
        --variants config,freeze-emb,freeze-2,pool-cls --alphas 0.3,0.5,0.7,1.0 --set finetune.max_steps=20
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from commerce_lm.config import load_config
from commerce_lm.training.adapt import interpolate_folder

CLI = [sys.executable, "-m", "commerce_lm.cli"]
MIX = {"cross_entropy": 1.0, "instance_contrastive": 1.0}
# MARC's choice on e5 (docs/objectives.md), and the base of the variants that change one knob of it.
CE_NEAR_3 = {"objective": {"cross_entropy": 1.0, "stay_near_pretrained": 3.0}, "pooling": "mean"}
# Rank-8 adapters in place of the weights (LoRA), at the ten-fold rate adapters are trained with.
LORA_8 = {"lora_rank": 8, "lora_alpha": 16.0, "learning_rate": 5.0e-4}
# name -> finetune overrides. "mix-W" is the default mix with the pull toward the PLM at weight W.
VARIANTS = {
    "ce": {"objective": {"cross_entropy": 1.0}, "pooling": "cls"},
    "supcon": {"objective": {"supervised_contrastive": 1.0}, "pooling": "cls"},
    "simcse": {"objective": {"instance_contrastive": 1.0}, "pooling": "cls"},
    "mlm": {"objective": {"mlm": 1.0}, "pooling": "cls"},
    "ce+simcse": {"objective": MIX, "pooling": "mean"},
    "mix-0.1": {"objective": {**MIX, "stay_near_pretrained": 0.1}, "pooling": "mean"},
    "mix-0.3": {"objective": {**MIX, "stay_near_pretrained": 0.3}, "pooling": "mean"},
    "mix-1": {"objective": {**MIX, "stay_near_pretrained": 1.0}, "pooling": "mean"},
    "mix-0.1-lr2x": {"objective": {**MIX, "stay_near_pretrained": 0.1}, "pooling": "mean", "learning_rate": 1.0e-4},
    "mix-0.3-lr2x": {"objective": {**MIX, "stay_near_pretrained": 0.3}, "pooling": "mean", "learning_rate": 1.0e-4},
    "mix-1-lr2x": {"objective": {**MIX, "stay_near_pretrained": 1.0}, "pooling": "mean", "learning_rate": 1.0e-4},
    "mix-0.1+mlm": {"objective": {**MIX, "mlm": 1.0, "stay_near_pretrained": 0.1}, "pooling": "mean"},
    "mix-3": {"objective": {**MIX, "stay_near_pretrained": 3.0}, "pooling": "mean"},
    "mix-1-cls": {"objective": {**MIX, "stay_near_pretrained": 1.0}, "pooling": "cls"},
    "simcse+near-1": {"objective": {"instance_contrastive": 1.0, "stay_near_pretrained": 1.0}, "pooling": "mean"},
    "simcse+near-3": {"objective": {"instance_contrastive": 1.0, "stay_near_pretrained": 3.0}, "pooling": "mean"},
    "simcse+near-10": {"objective": {"instance_contrastive": 1.0, "stay_near_pretrained": 10.0}, "pooling": "mean"},
    "simcse+near-30": {"objective": {"instance_contrastive": 1.0, "stay_near_pretrained": 30.0}, "pooling": "mean"},
    "group+near-10": {"objective": {"group_contrastive": 1.0, "stay_near_pretrained": 10.0}, "pooling": "mean"},
    "group+near-30": {"objective": {"group_contrastive": 1.0, "stay_near_pretrained": 30.0}, "pooling": "mean"},
    "ce+near-3": CE_NEAR_3,
    "ce+near-10": {"objective": {"cross_entropy": 1.0, "stay_near_pretrained": 10.0}, "pooling": "mean"},
    "ce+near-3-lr2x": {**CE_NEAR_3, "learning_rate": 1.0e-4},
    # The domain head at 100 times the encoder's rate: it learns the label first (see head_learning_rate).
    "ce+near-3-head": {**CE_NEAR_3, "head_learning_rate": 5.0e-3},
    # The config's own finetune section, then one knob changed (how much of the PLM is adapted).
    "config": {},
    "pool-cls": {"pooling": "cls"},
    "pool-mean": {"pooling": "mean"},
    "freeze-emb": {"freeze_embeddings": True},
    "freeze-2": {"freeze_layers": 2},
    "freeze-4": {"freeze_layers": 4},
    "freeze-emb+4": {"freeze_embeddings": True, "freeze_layers": 4},
    "freeze-emb+6": {"freeze_embeddings": True, "freeze_layers": 6},
    "lora-8": LORA_8,
    # The same adapters over twice the steps: on MARC lora-8 still improved at its last step.
    "lora-8-2x": {**LORA_8, "epochs": 2.0},
}
ALPHAS = "0.3,0.5,0.7,1.0"
# The PLM arms: name -> embed settings over the config's.
PLM_ARMS = {"plm": {}, "plm-cls": {"pooling": "cls"}, "plm-noprompt": {"prompt": "none"}}
TASK_TOLERANCE = 0.005
SIMILARITY_RATIO = 0.97


def _run(args: list[str], log: Path) -> None:
    with log.open("a") as handle:
        done = subprocess.run([*CLI, *args], stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"{' '.join(args[:1])} failed; see {log}")


def _sets(overrides: dict) -> list[str]:
    return [arg for key, value in overrides.items() for arg in ("--set", f"finetune.{key}={json.dumps(value)}")]


def evaluate(config: str, sets: list[str], out: Path, prepared: Path, plm: Path, tuned: Path, log: Path) -> dict:
    """Heads and KNN on the two embedding sets; validation and test numbers per task and set."""
    common = ["--config", config, *sets, "--prepared", str(prepared), "--plm-embeddings", str(plm)]
    if not (out / "heads" / "metrics.json").exists():
        _run(["train-heads", *common, "--finetuned-embeddings", str(tuned), "--output", str(out / "heads")], log)
    metrics = {"heads": json.loads((out / "heads" / "metrics.json").read_text())}
    knn_out = out / "knn"
    if yaml.safe_load(Path(config).read_text()).get("similarity"):
        if not (knn_out / "metrics.json").exists():
            _run(["evaluate-knn", *common, "--finetuned-embeddings", str(tuned), "--output", str(knn_out)], log)
        metrics["knn"] = json.loads((knn_out / "metrics.json").read_text())
    else:
        metrics["knn"] = {}
    return metrics


def scores(metrics: dict, arm: str) -> dict:
    """Test and validation numbers of one arm: PR AUC per task, F1 per similarity set."""
    row = {"test": {}, "val": {}}
    for task, entry in metrics["heads"].items():
        row["test"][task], row["val"][task] = entry[arm]["pr_auc"], entry[arm]["val_pr_auc"]
    for name, entry in metrics["knn"].items():
        row["test"][f"knn:{name}"], row["val"][f"knn:{name}"] = entry[arm]["f1"], entry[arm]["validation_f1"]
    return row


def choose(rows: dict[str, dict], plm: dict) -> tuple[str, dict[str, dict]]:
    """The variant to ship, from validation numbers only (see the module docstring), and each one's evidence."""
    evidence = {}
    for name, row in rows.items():
        gains, ok = [], True
        for key, value in row["val"].items():
            base = plm["val"][key]
            if key.startswith("knn:"):
                ok &= value >= SIMILARITY_RATIO * base
                gains.append(value / base - 1 if base else 0.0)
            else:
                ok &= value >= base - TASK_TOLERANCE
                gains.append((value - base) / max(base, 1e-9))
        evidence[name] = {"qualifies": bool(ok), "mean_relative_gain": sum(gains) / len(gains), "worst": min(gains)}
    qualifying = [n for n in rows if evidence[n]["qualifies"]]
    if qualifying:
        return max(qualifying, key=lambda n: evidence[n]["mean_relative_gain"]), evidence
    # None does no harm: the one that harms least. A mean would let a large relative gain on one
    # small similarity F1 outweigh a lost task, the harm this rule exists to refuse.
    return max(rows, key=lambda n: evidence[n]["worst"]), evidence


def _table(rows: dict[str, dict], plm_rows: dict[str, dict], evidence: dict, seconds: dict) -> str:
    keys = list(next(iter(plm_rows.values()))["test"])
    header = ["objective", *keys, *[f"d {k}" for k in keys], "val gain", "qualifies", "train s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    base = plm_rows["plm"]["test"]
    for name, row in {**plm_rows, **rows}.items():
        cells = [f"{row['test'][k]:.3f}" for k in keys]
        diffs = [f"{row['test'][k] - base[k]:+.3f}" for k in keys]
        ev = evidence.get(name, {})
        gain = f"{ev['mean_relative_gain']:+.3f}" if ev else "-"
        tail = [gain, str(ev.get("qualifies", "-")), f"{seconds.get(name, 0):.0f}"]
        lines.append("| " + " | ".join([name, *cells, *diffs, *tail]) + " |")
    return "\n".join(lines)


def _embed_and_score(args: argparse.Namespace, sets: list[str], folder: Path, model: Path, log: Path) -> dict:
    """Embed with the encoder folder ``model``, train heads and run KNN in ``folder``: its row."""
    out = Path(args.out)
    if not (folder / "embeddings" / "manifest.json").exists():
        _run(["extract-embeddings", "--config", args.config, *sets, "--model", str(model),
              "--prepared", str(out / "prepared"), "--output", str(folder / "embeddings")], log)  # fmt: skip
    metrics = evaluate(args.config, sets, folder, out / "prepared", out / "plm-auto", folder / "embeddings", log)
    return scores(metrics, "finetuned")


def _names(text: str, known: dict | None = None) -> list[str]:
    """A comma-separated list of names (``known``: the names allowed)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if known is not None and name not in known]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; known: {', '.join(known)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--variants", nargs="+", action="extend", help=f"comma- or space-separated (default all): {', '.join(VARIANTS)}"
    )
    parser.add_argument("--alphas", default=ALPHAS, help="WiSE-FT weights to score each trained variant at")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE override for every step (repeatable)")
    args = parser.parse_args()
    variants = _names(",".join(args.variants or VARIANTS), VARIANTS)
    alphas = [float(a) for a in _names(args.alphas)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "log.txt"
    sets = [arg for s in args.set for arg in ("--set", s)]
    plm_model = load_config(args.config, args.set).model
    prepared = out / "prepared"
    if not (prepared / "stats.json").exists():
        _run(["prepare-data", "--config", args.config, *sets, "--output", str(prepared)], log)
    plm_rows: dict[str, dict] = {}
    seconds, results, overrides = {}, {}, {}
    # The PLM as it declares itself (pooling, prompt), then with [CLS] (the reference's baseline) and
    # without its prompt: how the PLM is embedded is chosen on validation like everything else.
    for name, embed in PLM_ARMS.items():
        plm = out / ("plm-auto" if name == "plm" else name)
        if not (plm / "manifest.json").exists():
            embed_sets = [arg for key, value in embed.items() for arg in ("--set", f"embed.{key}={value}")]
            _run(["extract-embeddings", "--config", args.config, *sets, *embed_sets,
                  "--prepared", str(prepared), "--output", str(plm)], log)  # fmt: skip
        manifest = json.loads((plm / "manifest.json").read_text())
        # Skip an arm that is the declared one again (an encoder that declares [CLS], or no prompt).
        if name != "plm" and all(manifest.get(k) == plm_rows["plm"][k] for k in ("pooling", "prompt")):
            continue
        # Heads and KNN of each arm, paired with the declared PLM (its "finetuned" slot holds the arm).
        metrics = evaluate(args.config, sets, out / f"eval-{name}", prepared, out / "plm-auto", plm, log)
        plm_rows[name] = scores(metrics, "plm" if name == "plm" else "finetuned")
        plm_rows[name].update({k: manifest.get(k) for k in ("pooling", "prompt")})
    for variant in variants:
        folder = out / variant
        began = time.perf_counter()
        if not (folder / "encoder" / "metrics.json").exists():
            # Exported whole (interpolation 1): each alpha below is then the mixing weight itself,
            # not a multiple of the config's own `interpolation`.
            _run(["finetune-encoder", "--config", args.config, *sets,
                  *_sets({**VARIANTS[variant], "interpolation": 1.0}),
                  "--prepared", str(prepared), "--output", str(folder / "encoder")], log)  # fmt: skip
        trained = json.loads((folder / "encoder" / "metrics.json").read_text())
        for alpha in alphas:
            # The export at alpha 1 is the variant itself; the others cost an export and an extraction.
            if alpha == 1:
                name, where, model = variant, folder, folder / "encoder" / "model"
            else:
                name, where = f"{variant}@{alpha:g}", folder / f"alpha-{alpha:g}"
                model = where / "model"
                if not model.exists():
                    interpolate_folder(str(folder / "encoder" / "model"), plm_model, alpha, str(model))
            results[name] = _embed_and_score(args, sets, where, model, log)
            seconds[name] = trained["train_seconds"]
            overrides[name] = {**VARIANTS[variant], **({} if alpha == 1 else {"interpolation": alpha})}
        print(f"{variant}: done in {time.perf_counter() - began:.0f}s", flush=True)
    chosen, evidence = choose(results, plm_rows["plm"])
    table = _table(results, plm_rows, evidence, seconds)
    (out / "ablation.json").write_text(
        json.dumps(
            {
                "plm": plm_rows,
                "variants": results,
                "evidence": evidence,
                "chosen": chosen,
                "overrides": overrides[chosen],
                "train_seconds": seconds,
            },
            indent=2,
        )  # fmt: skip
    )
    print(table)
    print(f"chosen on validation: {chosen} {json.dumps(overrides[chosen])}")


if __name__ == "__main__":
    main()
