"""prepare-data at scale: throughput and peak memory against today's per-row step and plain pandas.

Generates listings with the demo generator (in its own process, so its memory does not count) and
runs, each in a fresh process on the demo config (six datasets naming the one file):

- the peer: today's per-row implementation, at a size it can finish (the prepare-data tests' oracle,
  ``tests/commerce_lm/steps/prepare_data/prepare_reference``);
- plain pandas in memory: read, normalise, de-duplicate and hash-split each dataset with pandas
  string methods (fewer checks than the step; a floor for "just use pandas");
- ours (``commerce_lm.steps.prepare_data``) at each ``--rows`` size.

Each prints docs/s (corpus documents per second), input rows/s (summed over datasets), CPU seconds
(all threads; on a shared machine wall time measures the neighbours too) and peak RSS.
The last line is for the first ``--rows`` size:
``docs_per_second=N input_rows_per_second=N peak_rss_mb=N``.

    python benchmarks/prepare_scale.py [--rows 300000,1000000,3000000] [--peer-rows 30000] [--workdir DIR]
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


def _config(listings: Path):
    import yaml

    from commerce_lm.config import parse_config, section_for

    raw = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    for spec in [raw["domain"], *raw["tasks"], *raw.get("similarity", [])]:
        spec["data"] = str(listings)
    raw["model"] = "unused"
    raw["prepare"]["max_rejected_fraction"] = 1.0
    return section_for("prepare-data", parse_config(raw, "configs/demo.yaml (data replaced)"))


def _pandas(cfg, out_dir: Path) -> dict:
    """Plain pandas: per dataset, read, normalise, drop duplicates, hash-split, write."""
    import hashlib
    import html

    import pandas as pd

    out_dir.mkdir(parents=True, exist_ok=True)
    corpus: set[str] = set()
    input_rows = 0
    for n, spec in enumerate([cfg.domain, *cfg.tasks, *cfg.similarity]):
        frame = pd.read_parquet(spec.data)
        input_rows += len(frame)
        text = frame[list(spec.text)].fillna("").agg("\n".join, axis=1)
        text = text.str.replace(r"<[A-Za-z/!][^<>]{0,200}>", " ", regex=True).map(html.unescape)
        frame["text"] = text.str.normalize("NFKC").str.replace(r"\s+", " ", regex=True).str.strip()
        frame = frame[frame["text"] != ""].drop_duplicates("id").drop_duplicates("text")
        digest = frame["text"].map(lambda t: int(hashlib.sha256(t.encode()).hexdigest()[:16], 16) / 16**16)
        frame["split"] = pd.cut(digest, [0, 0.25, 0.4, 1], labels=["test", "validation", "train"], include_lowest=True)
        frame[["id", "text", "split"]].to_parquet(out_dir / f"{n}.parquet")
        if n:
            corpus.update(frame["id"])
    return {"corpus_rows": len(corpus), "input_rows": input_rows}


def _prepare(which: str, listings: Path, out_dir: Path) -> None:
    import resource

    cfg = _config(listings)
    start, cpu = time.perf_counter(), time.process_time()
    if which == "ours":
        from commerce_lm.steps import prepare_data

        metrics = prepare_data.run(cfg, str(out_dir))
    elif which == "peer":
        from tests.commerce_lm.steps.prepare_data import prepare_reference

        done = prepare_reference.run(cfg, out_dir)
        metrics = {
            "corpus_rows": done["corpus_rows"],
            "input_rows": sum(s["input_rows"] for s in done["stats"].values()),
        }
    else:
        metrics = _pandas(cfg, out_dir)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak_kb / 1024, **metrics}))


def _listings(work: Path, rows: int) -> Path:
    listings = work / f"listings-{rows}.parquet"
    if not listings.exists():
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--child", "generate", str(listings), str(rows)], check=True)
        print(f"generated {listings} in {time.perf_counter() - start:.1f} s", flush=True)
    return listings


def _measure(which: str, listings: Path, work: Path) -> dict:
    out = work / f"prepared-{which}-{listings.stem}"
    # The repository root on the path, so the peer imports from the tests package that keeps it.
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, __file__, "--child", which, str(listings), str(out)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["docs_per_second"] = result["corpus_rows"] / result["seconds"]
    result["input_rows_per_second"] = result["input_rows"] / result["seconds"]
    print(
        f"{which:6s} {listings.stem:>20s}: {result['corpus_rows']:>9} docs, {result['input_rows']:>9} input rows in "
        f"{result['seconds']:7.1f} s = {result['docs_per_second']:8.0f} docs/s, "
        f"{result['input_rows_per_second']:8.0f} input rows/s; {result['cpu_seconds']:6.1f} CPU s "
        f"({result['corpus_rows'] / result['cpu_seconds']:8.0f} docs/CPU s); peak RSS {result['peak_rss_mb']:6.0f} MB",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="300000,1000000,3000000", help="listing counts for ours, comma-separated")
    parser.add_argument("--peer-rows", type=int, default=30_000, help="listings for the per-row peer and pandas")
    parser.add_argument("--workdir", default=None, help="keep the generated listings here (reused when present)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, a, b = args.child
        if step == "generate":
            _generate(Path(a), int(b))
        else:
            _prepare(step, Path(a), Path(b))
        return 0

    work = Path(args.workdir or tempfile.mkdtemp(prefix="prepare-scale-"))
    sizes = [int(n) for n in args.rows.split(",")]
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores", flush=True)
    small = _listings(work, args.peer_rows)
    results = {which: _measure(which, small, work) for which in ("peer", "pandas", "ours")}
    speed = {which: result["docs_per_second"] for which, result in results.items()}
    print(
        f"at {args.peer_rows} listings ours is {speed['ours'] / speed['peer']:.1f}x the per-row peer "
        f"and {speed['ours'] / speed['pandas']:.1f}x plain pandas"
    )
    first = None
    for rows in sizes:
        result = _measure("ours", _listings(work, rows), work)
        first = first or result
    print(
        f"docs_per_second={first['docs_per_second']:.0f} "
        f"input_rows_per_second={first['input_rows_per_second']:.0f} peak_rss_mb={first['peak_rss_mb']:.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
