"""Benchmark: does `vp.sweep` use all cores? A 64-member sweep timed with 1 worker and with one per core.

    python3 benchmarks/sweep_cores.py            # prints the measurements, then one result line
    python3 benchmarks/sweep_cores.py --members 16

The grid is the packaged example case (one port, 30 m deep, stratified coastal sea) given a day of hourly
tidal currents (24 cases per member), over 8 effluent flows x 8 port diameters: 64 members, 1536 cases.
Both runs use the default pool, the process-wide one `vp.run` uses too (kept between calls): each
pool size is first started and warmed with a 4-member sweep (its start is reported apart), then timed.
CPU utilisation is the CPU time of this process and of the pool's workers over wall time x cores. Target ("uses all cores"): a speed-up of at least 0.8 x cores, i.e. >= 1.6 on 2 cores.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # run from a checkout without installing

TARGET_EFFICIENCY = 0.8     # speed-up per core counted as "uses all cores"


def grid(members: int = 64) -> dict[str, list[float]]:
    """`members` members (rounded up to a rectangle): effluent flows x port diameters."""
    side = max(1, math.isqrt(members))
    flows = [round(0.04 + 0.02 * i, 3) for i in range(side)]
    diameters = [round(0.1 + 0.03 * i, 3) for i in range(math.ceil(members / side))]
    return {"diffuser.effluent_flow": flows, "diffuser.diameter": diameters}


def day_case() -> "object":
    """The packaged example with 24 hourly cases: a semidiurnal current, 0.02-0.22 m/s at the surface."""
    import json

    import vp_jupyter as vp

    data = json.loads((resources.files("vp_jupyter") / "examples" / "stratified_outfall.json").read_text())
    rows = []
    for hour in range(24):
        surface = 0.12 + 0.1 * math.sin(2 * math.pi * hour / 12.42)
        rows.append(f"{surface:.3f},{0.6 * surface:.3f}")
    data["timeseries"] = {"start_time": 0, "end_time": 23, "time_increment": 1, "units": "hr",
                          "ambient": {"current_speed": {"increment_hours": 1, "units": "m/s", "depth_units": "m",
                                                        "csv": "0,40\n" + "\n".join(rows) + "\n"}}}
    return vp.Case.load(data)


def pool_cpu() -> dict[int, float]:
    """CPU seconds used so far by each live worker of the shared pool (they outlive a sweep)."""
    import psutil

    from vp_jupyter import local_pool

    pool, used = local_pool._shared, {}
    for pid in pool.worker_pids() if pool is not None else []:
        try:
            times = psutil.Process(pid).cpu_times()
            used[pid] = times.user + times.system
        except psutil.Error:
            pass
    return used


def timed_sweep(case, members: int, workers: int) -> dict[str, float]:
    import vp_jupyter as vp

    before, pool_before, start = os.times(), pool_cpu(), time.perf_counter()
    table = vp.sweep(case, grid(members), max_workers=workers, progress=False)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = sum(after[i] - before[i] for i in range(4))        # user, system, children user, children system
    cpu += sum(t - pool_before.get(pid, 0.0) for pid, t in pool_cpu().items())
    return {"wall_s": wall, "cpu_s": cpu, "members": int(table["member"].nunique()), "rows": len(table),
            "workers_used": len(table.attrs["worker_pids"])}


def warm_pool(case, workers: int) -> float:
    """Start the shared pool of `workers` processes with a 4-member sweep; its wall time (pool start)."""
    start = time.perf_counter()
    timed_sweep(case, 4, workers)
    return time.perf_counter() - start


def measure(members: int = 64, cores: int | None = None) -> dict[str, float]:
    cores = cores or os.cpu_count() or 1
    case = day_case()
    start_1 = warm_pool(case, 1)
    one = timed_sweep(case, members, 1)
    start_n = warm_pool(case, cores)
    many = timed_sweep(case, members, cores)
    speedup = one["wall_s"] / many["wall_s"]
    target = TARGET_EFFICIENCY * cores if cores > 1 else 1.0
    return {"members": many["members"], "cases": many["rows"], "cores": cores, "wall_1_s": one["wall_s"], "wall_n_s": many["wall_s"],
            "speedup": speedup, "target": target, "pool_start_1_s": start_1, "pool_start_n_s": start_n, "workers_used": many["workers_used"],
            "cpu_utilisation": many["cpu_s"] / (many["wall_s"] * cores),
            "cpu_utilisation_1": one["cpu_s"] / (one["wall_s"] * cores),
            "passed": speedup >= target}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=64, help="grid size (default 64)")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 0.5:
        print(f"note: load average {load:.1f} before the start; other processes compete for the cores")
    m = measure(args.members)
    print(f"pool start + 4-member warm-up sweep: {m['pool_start_1_s']:.2f} s (1 worker), "
          f"{m['pool_start_n_s']:.2f} s ({m['cores']} workers)")
    print(f"1 worker:   {m['wall_1_s']:6.2f} s wall, CPU utilisation {m['cpu_utilisation_1']:.0%} of {m['cores']} cores")
    print(f"{m['cores']} workers:  {m['wall_n_s']:6.2f} s wall, CPU utilisation {m['cpu_utilisation']:.0%} of "
          f"{m['cores']} cores, {m['workers_used']} worker processes ran members")
    print(f"sweep_cores: {m['members']} members ({m['cases']} cases), speed-up {m['speedup']:.2f} on {m['cores']} cores "
          f"(target >= {m['target']:.1f}), CPU utilisation {m['cpu_utilisation']:.0%}: "
          f"{'PASS' if m['passed'] else 'FAIL'}")
    return 0 if m["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
