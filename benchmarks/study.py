"""Benchmark: a 1,000-member uncertainty study of one case on the local pool (`vp.uncertainty`).

    python3 benchmarks/study.py                  # 1,000 members, one worker per core
    python3 benchmarks/study.py --members 200 --workers 1

The case is the packaged example (one port, 30 m deep, stratified coastal sea) with its mixing zone at
20 m; the effluent flow (lognormal), the current speed (triangular) and the effluent temperature (normal)
are sampled by Latin hypercube. The time covers everything `vp.uncertainty` does: sampling, validating
every member, starting the spawned worker pool, running the members through `sweeps.run_cases`, the
outcome table, the dilution fan and the summary (the study is not stored). CPU utilisation is the CPU time
of this process and its finished workers over wall time x cores. No target: the number goes in the README.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # run from a checkout without installing

INPUTS = {"diffuser.effluent_flow": ["lognormal", 0.12, 1.3],
          "ambient.current_speed": ["triangular", 0.04, 0.12, 0.25],
          "diffuser.temperature": ["normal", 24.0, 1.5]}


def case() -> dict:
    data = json.loads((resources.files("vp_jupyter") / "examples" / "stratified_outfall.json").read_text())
    data["diffuser"]["values"]["acute_mixing_zone"] = 20.0
    return data


def measure(members: int, workers: int) -> dict:
    import vp_jupyter as vp

    before, start = os.times(), time.perf_counter()
    study = vp.uncertainty(case(), INPUTS, n=members, seed=1, max_workers=workers, progress=False, store=False)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = sum(after[i] - before[i] for i in range(4))
    summary = study.summary()
    return {"members": summary["members"], "ran": summary["ran"], "wall_s": wall, "cpu_s": cpu,
            "workers": workers, "p50": summary["p50_mz_dilution"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000, help="members (default 1000)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 0.5:
        print(f"note: load average {load:.1f} before the start; other processes compete for the cores")
    measure(20, 1)                          # warm imports and the file cache
    m = measure(args.members, args.workers)
    cores = os.cpu_count() or 1
    print(f"study: {m['members']} members ({m['ran']} ran) on {m['workers']} worker(s), {cores} cores: "
          f"{m['wall_s']:.1f} s wall, {1000 * m['wall_s'] / m['members']:.1f} ms per member, CPU utilisation "
          f"{m['cpu_s'] / (m['wall_s'] * cores):.0%}; median dilution at the boundary {m['p50']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
