"""Benchmark: validate and plan specs with 10, 100 and 1,000 models on each cloud.

    .venv/bin/python benchmarks/run.py                 # all clouds, 10/100/1000 models, 3 repeats
    .venv/bin/python benchmarks/run.py --models 10,100 --clouds aws --repeat 5

Specs are generated from stacks/prod.yaml (its models repeated under new
names). Each measurement runs in a fresh subprocess, so peak memory is its own
and no import is shared. `plan` is compared with the floor: the same resources
(types, names, inputs) registered bare, as plain custom resources, under the
same mock monitor in the same subprocess. Medians of the repeats are printed.
Not part of the test suite: timings on shared machines are noisy.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def make_spec(models: int) -> str:
    spec = yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text())
    templates = spec["models"]
    spec["models"] = []
    for i in range(models):
        model = copy.deepcopy(templates[i % len(templates)])
        model["name"] = f"{model['name'][:20]}-{i}"
        spec["models"].append(model)
    for settings in spec["clouds"].values():
        settings.pop("overrides", None)  # they name the original models
    return yaml.safe_dump(spec, sort_keys=False)


WORKER = r"""
import gc, json, resource, statistics, sys, time
from pathlib import Path

path, cloud, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
from mlops_infra.spec.validate import check_file
from mlops_infra.plan import plan_document, run_offline
from mlops_infra.backends import get_backend

def timed(fn):
    start = time.perf_counter(); value = fn(); return time.perf_counter() - start, value

validate = []
for _ in range(repeat):
    seconds, checked = timed(lambda: check_file(path, clouds=[cloud]))
    validate.append(seconds)
spec = checked.spec
plan = []
for _ in range(repeat):
    seconds, document = timed(lambda: plan_document(spec, cloud, stack="bench"))
    plan.append(seconds)

class Floor:
    # The same registrations, bare: plain custom/component resources with the plan's inputs.
    backend = get_backend(cloud)
    exports = {}
    def __call__(self):
        import pulumi
        created = {}
        for r in document["resources"]:
            parent = created.get(r["parent"])
            opts = pulumi.ResourceOptions(parent=parent, protect=r["protect"])
            if r["custom"]:
                created[r["name"]] = pulumi.CustomResource(r["type"], r["name"], dict(r["inputs"]), opts)
            else:
                created[r["name"]] = pulumi.ComponentResource(r["type"], r["name"], None, opts)

ordered = sorted(document["resources"], key=lambda r: (r["parent"] is not None, r["custom"]))
document = {"resources": ordered}
floor = []
for _ in range(repeat):
    seconds, _ = timed(lambda: run_offline(Floor(), project="bench", stack="bench"))
    floor.append(seconds)
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"validate": validate, "plan": plan, "floor": floor, "resources": len(ordered), "peak_mib": peak_mib}))
"""


def measure(spec_path: Path, cloud: str, repeat: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(spec_path), cloud, str(repeat)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"benchmark worker failed for {cloud}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def startup(repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from mlops_infra.cli import main; main()", "--help"],
                       cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="10,100,1000")
    parser.add_argument("--clouds", default="aws,gcp,azure")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(n) for n in args.models.split(",")]
    clouds = args.clouds.split(",")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}")
    print(f"`mlops-infra --help`: {startup(args.repeat) * 1000:.0f} ms (median of {args.repeat})")
    header = f"{'cloud':6} {'models':>6} {'resources':>9} {'validate s':>10} {'plan s':>8} {'floor s':>8} {'plan/floor':>10} {'ms/resource':>11} {'peak MiB':>8}"
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            # One folder per spec: validate reads the specs beside it as stacks sharing an account.
            spec_path = Path(tmp) / str(size) / "spec.yaml"
            spec_path.parent.mkdir()
            spec_path.write_text(make_spec(size))
            for cloud in clouds:
                r = measure(spec_path, cloud, args.repeat)
                plan, floor = statistics.median(r["plan"]), statistics.median(r["floor"])
                print(
                    f"{cloud:6} {size:>6} {r['resources']:>9} {statistics.median(r['validate']):>10.3f} {plan:>8.2f} "
                    f"{floor:>8.2f} {plan / floor:>10.2f} {plan / r['resources'] * 1000:>11.2f} {r['peak_mib']:>8.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
