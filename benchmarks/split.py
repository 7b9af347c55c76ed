"""Benchmark: a split spec at scale (shared stack + model stacks) against the same spec unsplit.

    .venv/bin/python benchmarks/split.py                       # 1,000 models, groups of 20, all clouds
    .venv/bin/python benchmarks/split.py --models 200 --group 10 --clouds aws --repeat 3

Times, per cloud and in one fresh subprocess each: `plan` of the whole spec unsplit, `plan` of
every part of the split spec, and `plan --part <one model>` (what a change to one model costs:
the shared part, whose handover the model stack reads, plus that model's stack), with the
largest Pulumi stack's resource count. Medians of the repeats. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT, make_spec  # noqa: E402

WORKER = r"""
import json, resource, sys, time
from mlops_infra.spec.validate import check_file
from mlops_infra.plan import plan_document

path, cloud, repeat, one = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
spec = check_file(path, clouds=[cloud]).spec
plain = spec.model_copy(update={"split": spec.split.model_copy(update={"enabled": False})})

def timed(fn):
    start = time.perf_counter(); value = fn(); return time.perf_counter() - start, value

out = {"whole": [], "split": [], "one": []}
for _ in range(repeat):
    seconds, whole = timed(lambda: plan_document(plain, cloud, stack="bench"))
    out["whole"].append(seconds)
    seconds, split = timed(lambda: plan_document(spec, cloud, stack="bench"))
    out["split"].append(seconds)
    seconds, _ = timed(lambda: plan_document(spec, cloud, stack="bench", part=one))
    out["one"].append(seconds)
out["resources"] = len(whole["resources"])
out["stacks"] = len(split["split"]["parts"])
out["largest"] = max(split["summary"]["by_part"].values())
out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def split_spec(models: int, group: int) -> tuple[str, str]:
    spec = yaml.safe_load(make_spec(models))
    spec["split"] = {"enabled": True, "max_models_per_stack": group}
    for i, model in enumerate(spec["models"]):
        model["group"] = f"group-{i // group}"
    return yaml.safe_dump(spec, sort_keys=False), spec["models"][0]["name"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--group", type=int, default=20, help="models per model stack")
    parser.add_argument("--clouds", default="aws,gcp,azure")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}")
    print(f"{args.models} models in groups of {args.group}")
    print(f"{'cloud':6} {'resources':>9} {'stacks':>6} {'largest':>7} {'unsplit s':>9} {'split s':>8} "
          f"{'one model s':>11} {'peak MiB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        text, one = split_spec(args.models, args.group)
        path = Path(tmp) / "split.yaml"
        path.write_text(text)
        for cloud in args.clouds.split(","):
            run = subprocess.run(
                [sys.executable, "-c", WORKER, str(path), cloud, str(args.repeat), one],
                cwd=ROOT, capture_output=True, text=True, check=False,
            )
            if run.returncode != 0:
                raise SystemExit(f"benchmark worker failed for {cloud}:\n{run.stderr[-3000:]}")
            r = json.loads(run.stdout.strip().splitlines()[-1])
            print(
                f"{cloud:6} {r['resources']:>9} {r['stacks']:>6} {r['largest']:>7} "
                f"{statistics.median(r['whole']):>9.2f} {statistics.median(r['split']):>8.2f} "
                f"{statistics.median(r['one']):>11.2f} {r['peak_mib']:>8.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
