"""prepare-data at scale: 1M synthetic listings, throughput and peak memory.

Generates about 1M listings with the demo generator (in its own process, so its memory does not
count), then runs prepare-data on them with the demo config in a fresh process and reports its rows/s
and peak RSS (target: under 2 GB; prepare-data streams record batches, so memory should not grow
with the corpus).

    python benchmarks/prepare_scale.py [--rows 1000000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Rows per generated item: 12% re-listed 3-4 times, 10% translated 3-4 times, the rest once.
ROWS_PER_ITEM = 0.12 * 3.5 + 0.10 * 3.5 + 0.78


def _generate(path: Path, rows: int) -> None:
    from commerce_lm.demo import corpus as demo_data

    demo_data.write(str(path), n_items=max(int(rows / ROWS_PER_ITEM), 1))


def _prepare(listings: Path, out_dir: Path) -> None:
    import resource

    import yaml

    from commerce_lm.config import parse_config
    from commerce_lm.steps import prepare_data

    raw = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    for spec in [raw["domain"], *raw["tasks"], *raw.get("similarity", [])]:
        spec["data"] = str(listings)
    raw["model"] = "unused"
    cfg = parse_config(raw, "configs/demo.yaml (data replaced)")
    start = time.perf_counter()
    metrics = prepare_data.run(cfg, str(out_dir))
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_kb / 1024, **metrics}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", default=None, help="keep the generated listings here (reused when present)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, a, b = args.child
        if step == "generate":
            _generate(Path(a), int(b))
        else:
            _prepare(Path(a), Path(b))
        return 0

    work = Path(args.workdir or tempfile.mkdtemp(prefix="prepare-scale-"))
    listings = work / f"listings-{args.rows}.parquet"
    if not listings.exists():
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--child", "generate", str(listings), str(args.rows)], check=True)
        print(f"generated {listings} in {time.perf_counter() - start:.1f} s")
    load = os.getloadavg()
    done = subprocess.run(
        [sys.executable, __file__, "--child", "prepare", str(listings), str(work / "prepared")],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    rows = result["input_rows"]
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"prepare-data: {result.get('corpus_rows')} corpus docs from {rows} input rows (all datasets) in "
        f"{result['seconds']:.1f} s; rejected {result['rejected_rows']}"
    )
    print(
        f"docs_per_second={result['corpus_rows'] / result['seconds']:.0f} "
        f"input_rows_per_second={rows / result['seconds']:.0f} peak_rss_mb={result['peak_rss_mb']:.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
