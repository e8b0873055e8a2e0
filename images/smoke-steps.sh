# The smoke test's commands, run by `sh` inside an image as its user, with no network (images/smoke.sh).
# $1: processes for finetune-encoder under torchrun. stdin: configs/tiny.yaml, the one file handed in;
# the data and the tiny model are made here, and everything else must come from the image.
set -eu
procs=$1
cd "$(mktemp -d /tmp/smoke.XXXXXX)"
cat >tiny.yaml

# What pyproject.toml asks for (with the pipelines extra; markers evaluated here) is installed.
pip check
python -c '
from importlib.metadata import requires, version
from packaging.requirements import Requirement
for line in requires("commerce-lm"):
    req = Requirement(line)
    if req.marker is None or req.marker.evaluate({"extra": "pipelines"}):
        assert req.specifier.contains(version(req.name), prereleases=True), (str(req), version(req.name))
print("requirements: every dependency of commerce-lm[pipelines] installed at an allowed version")
'

commerce-lm --help >/dev/null
commands=$(commerce-lm --help | sed -n 's/^ *{\(.*\)}$/\1/p' | head -1 | tr , ' ')
for command in $commands; do commerce-lm "$command" --help >/dev/null; done
echo "help: commerce-lm and its subcommands: $commands"

commerce-lm demo-data --output listings.parquet --items 300 --seed 11
python -c '
import pandas as pd
from commerce_lm.demo.tiny_model import build_tiny_xlmr
frame = pd.read_parquet("listings.parquet")
build_tiny_xlmr("tiny-xlmr", (frame["title"] + "\n" + frame["description"]).tolist(), vocab_size=800)
'

# A few steps of training and a short bootstrap: this proves the image, not the model.
quick="--config tiny.yaml --set finetune.max_steps=2 --set baseline.max_steps=2 --set report.bootstrap_samples=10"
step() {
    echo "== commerce-lm $1"
    name=$1
    shift
    # shellcheck disable=SC2086 # $quick is a list of arguments
    commerce-lm "$name" $quick "$@" >"$name.log" 2>&1 || { cat "$name.log"; exit 1; }
}
step prepare-data --output prepared
step finetune-encoder --prepared prepared --output finetuned --num-procs "$procs"
step extract-embeddings --prepared prepared --output plm-part
step gather-embeddings --prepared prepared --parts plm-part --output plm
step extract-embeddings --prepared prepared --model finetuned/model --output tuned-part
step gather-embeddings --prepared prepared --parts tuned-part --output tuned
both="--prepared prepared --plm-embeddings plm --finetuned-embeddings tuned"
# shellcheck disable=SC2086
step train-heads $both --finetuned-model finetuned/model --output heads
# shellcheck disable=SC2086
step evaluate-knn $both --finetuned-model finetuned/model --output knn
step finetune-baseline --prepared prepared --task prohibited --output baseline
# shellcheck disable=SC2086
step build-report $both --finetuned finetuned --heads heads --knn knn --baselines baseline --output report
grep -q prohibited report/report.md
echo "steps: all passed; report: $(wc -c <report/report.html) bytes of HTML"
