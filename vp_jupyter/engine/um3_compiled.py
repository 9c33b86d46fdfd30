"""The UM3 near field through the compiled step loop (`um3_kernel`, Numba), else the pure-Python one.

`near_field(case)` gives the same `CaseOutput` as `um3.run_um3` (a test holds every public reference case
to 1e-9 between the two). Numba is imported on first use, not at import, and only when a process runs
enough cases for it to pay (`prepare`, PURE_CASES_FIRST): a single case in a fresh process (the CLI) stays
in pure Python. The pure-Python loop is used
when numba cannot be imported or when the environment variable VP_JUPYTER_ENGINE=python asks for it.

The compiled code is cached on disk by Numba (in the package's `__pycache__`, or in NUMBA_CACHE_DIR when
that is set); the first run of a fresh install compiles it (tens of seconds) and says so on stderr (or
through the `notify` of `warm_up`, which the server calls in the background at start).
The cache folder is stamped with a hash of the engine sources the loop is compiled from (see `_cache_missing`).
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Optional

from .ambient import AmbientColumn, AmbientState
from .seawater import density
from .types import MAX_STEPS, MISSING, PLUME_COLUMNS, Ambient, CaseOutput, Diffuser, EngineCase, Settings, \
    VariableProfile
from .um3 import (ISOPLETH_ABOVE_SOURCE, PROFILE_CONSTANTS, ROW_STATUS_TEXTS, STOP_LIMITS, STOP_TEXTS,
                  finish_output, format_memo_number, run_um3, start_memos)

ENGINE_ENV = "VP_JUPYTER_ENGINE"            # "python": always the pure-Python loop
COMPILE_SECONDS_TYPICAL = 30                # what the notice promises (measured on a 2-core machine)
PURE_CASES_FIRST = 20                       # a process runs this many cases in pure Python before loading
_STAMP = "vp_jupyter_um3_kernel.sources"    # beside Numba's cache: the _fingerprint it was compiled from
_ENGINE_FILES = ("um3_kernel.py", "um3.py", "seawater.py", "decay.py", "types.py")

_lock = threading.Lock()
_kernel = None                              # the loaded um3_kernel module, once ready
_unavailable: Optional[str] = None          # why the compiled loop is not used, once known
_COLUMN_NAMES = tuple(PLUME_COLUMNS)
_status_texts: dict[int, str] = {}
_pure_cases = 0


def pure_python_forced() -> bool:
    return os.environ.get(ENGINE_ENV, "").strip().lower() in ("python", "pure", "pure-python")


def engine_name() -> str:
    """"compiled" or "python": the loop `near_field` uses (loads the compiled one if need be)."""
    return "compiled" if _load() is not None else "python"


def unavailable_reason() -> Optional[str]:
    _load()
    return _unavailable


def near_field(case: EngineCase) -> CaseOutput:
    """UM3 near field of one case (spec §6–§9): compiled when the compiled loop is loaded, else
    `um3.run_um3`. A process loads it after PURE_CASES_FIRST cases (or at once through `prepare`)."""
    global _pure_cases
    kernel = _kernel
    if kernel is None and _unavailable is None:
        _pure_cases += 1
        if _pure_cases > PURE_CASES_FIRST:
            kernel = _load()
    if kernel is None:
        return run_um3(case)
    return _run_compiled(kernel, case)


def prepare(case_count: int) -> None:
    """Load the compiled loop before a run of `case_count` cases when it pays: loading it (import numba,
    read the cache) takes about half a second, the pure loop about 5 ms a case."""
    if case_count > PURE_CASES_FIRST:
        _load()


def warm_up(notify: Optional[Callable[[str], None]] = None) -> bool:
    """Load (and if need be compile) the compiled loop now; True when it is in use. `notify` receives a
    message when compiling takes a while (default: stderr)."""
    return _load(notify) is not None


def compile_in_background(**popen: Any) -> "subprocess.Popen | None":
    """Compile (or just check) the cached loop in a separate low-priority process, so that a server's
    first runs find it ready; None when the pure loop is forced or the cache in the package's own
    `__pycache__` is known fresh. `popen`: extra subprocess.Popen arguments."""
    if pure_python_forced():
        return None
    if "NUMBA_CACHE_DIR" not in os.environ and "NUMBA_CACHE_DIR" not in popen.get("env", {}):
        folder = Path(__file__).parent / "__pycache__"
        try:
            if (folder / _STAMP).read_text() == _fingerprint() and any(folder.glob("um3_kernel.um3_loop-*.nbi")):
                return None
        except OSError:
            pass
    code = "import vp_jupyter.engine.um3_compiled as c; c.warm_up()"
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    return subprocess.Popen([*nice, sys.executable, "-c", code], stdin=subprocess.DEVNULL, **popen)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _load(notify: Optional[Callable[[str], None]] = None):
    global _kernel, _unavailable
    if _kernel is not None or _unavailable is not None:
        return _kernel
    with _lock:
        if _kernel is not None or _unavailable is not None:
            return _kernel
        if pure_python_forced():
            _unavailable = f"{ENGINE_ENV}={os.environ.get(ENGINE_ENV)} asks for the pure-Python loop"
            return None
        try:
            from . import um3_kernel as kernel
        except ImportError as error:
            _unavailable = f"numba is not available ({error}); using the pure-Python UM3 loop"
            return None
        try:
            if _cache_missing(kernel):
                (notify or _say)(f"vp_jupyter: compiling the UM3 step loop (first run only, about "
                                 f"{COMPILE_SECONDS_TYPICAL} s; cached in {_cache_folder(kernel)})…")
            _run_compiled(kernel, _tiny_case())         # compiles, or loads from the cache
        except Exception as error:  # a compiler failure must not stop the model: use the reference loop
            _unavailable = f"compiling the UM3 loop failed ({type(error).__name__}: {error}); using pure Python"
            _say(f"vp_jupyter: {_unavailable}")
            return None
        _kernel = kernel
        return kernel


def _cache_folder(kernel) -> Path:
    return Path(kernel.um3_loop.stats.cache_path)


def _fingerprint() -> str:
    here = Path(__file__).parent
    return hashlib.sha256(b"".join((here / name).read_bytes() for name in _ENGINE_FILES)).hexdigest()


def _cache_missing(kernel) -> bool:
    """True when the loop must be compiled: no cache of it, or one older than the engine sources.

    Numba keys the cache of a function by its own file only, and the loop also embeds code compiled from
    the engine modules of _ENGINE_FILES: when those changed since the cache was written, drop it."""
    from numba.core.dispatcher import Dispatcher

    folder = _cache_folder(kernel)
    fingerprint = _fingerprint()
    stamp = folder / _STAMP
    try:
        fresh = stamp.read_text() == fingerprint
    except OSError:
        fresh = False
    if fresh:
        return not any(folder.glob("um3_kernel.um3_loop-*.nbi"))
    for dispatcher in (value for value in vars(kernel).values() if isinstance(value, Dispatcher)):
        dispatcher._cache.flush()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stamp.write_text(fingerprint)
    except OSError:
        pass
    return True


def _profile_arrays(ambient: Ambient, names: tuple[str, ...]):
    import numpy as np

    profiles = [ambient.profiles[name] for name in names]
    width = max(len(p.depths) for p in profiles)
    depths = np.zeros((len(names), width))
    values = np.zeros((len(names), width))
    for k, prof in enumerate(profiles):
        depths[k, :len(prof.depths)] = prof.depths
        values[k, :len(prof.values)] = prof.values
    counts = np.array([len(p.depths) for p in profiles], dtype=np.int64)
    codes = {"CONSTANT": 0, "LINEAR_TO_ZERO": 1, "EXTRAPOLATED": 2}
    surface = np.array([codes[p.surface] for p in profiles], dtype=np.int64)
    bottom = np.array([codes[p.bottom] for p in profiles], dtype=np.int64)
    return depths, values, counts, surface, bottom


def _run_compiled(kernel, case: EngineCase) -> CaseOutput:
    st, dif, amb_in = case.settings, case.diffuser, case.ambient
    eq = bool(st.at_equilibrium)
    depths, values, counts, surface_modes, bottom_modes = _profile_arrays(amb_in, kernel.NEAR_VARIABLES)
    speeds = amb_in.profiles["current_speed"].values
    mean_speed = (speeds[-1] + speeds[-2]) / 2.0 if len(speeds) > 1 else speeds[0]      # spec §6.2
    deepest = amb_in.profiles["current_speed"].depths[-1]
    sal_p, temp_p = amb_in.profiles["salinity"], amb_in.profiles["temperature"]
    surface_density = density(sal_p.values[0], temp_p.values[0], sal_p.depths[0], eq)
    trap_limit, reversal_limit = STOP_LIMITS[st.max_reversals]
    poly, single = PROFILE_CONSTANTS[st.similarity_profile]
    n_ports = int(dif.num_ports)
    rows, steps, statuses, matched, info = kernel.um3_loop(
        depths, values, counts, surface_modes, bottom_modes, float(amb_in.bottom_depth), bool(amb_in.decay_is_light),
        str(st.bacteria_model), float(st.light_absorb_coeff), bool(st.current_vector_averaging), eq,
        float(mean_speed), float(deepest), float(surface_density),
        n_ports, float(dif.port_spacing), float(dif.depth), float(dif.effluent_flow), float(dif.diameter),
        float(st.contraction_coeff), float(dif.horizontal_angle), float(dif.vertical_angle), float(dif.salinity),
        float(dif.temperature), float(dif.concentration), float(dif.offset_x), float(dif.offset_y),
        float(dif.acute_mixing_zone), kernel.ISOPLETH_CODES[dif.isopleth_type], float(dif.isopleth),
        kernel.PROFILE_CODES[st.similarity_profile], float(poly), float(single), float(st.tpb_channel_width),
        float(st.tpb_mixing_zone_ceil), bool(st.report_effective_dillution), bool(st.allow_induced_current),
        float(st.aspiration_coeff), float(st.write_step_freq), int(round(st.write_step_freq)),
        not st.dont_stop_on_surface_hit, bool(st.stop_on_bottom_hit), float(st.max_dilution), int(trap_limit),
        int(reversal_limit), int(MAX_STEPS), float(MISSING), float(case.buildup))
    info = info.tolist()                    # plain floats, like the pure loop's
    out = CaseOutput(steps=steps.tolist(), statuses=[_status_text(bits) for bits in statuses.tolist()],
                     columns=dict(zip(_COLUMN_NAMES, rows.T.tolist())))
    matched = matched.tolist()
    for index in (i for i, speed in enumerate(matched) if not math.isnan(speed)):
        text = "matched energy radial vel = " + format_memo_number(matched[index]) + " m/s"
        out.statuses[index] = f"{out.statuses[index]}, {text}" if out.statuses[index] else text
    flags = int(info[kernel.I_FLAGS])
    stop = int(info[kernel.I_STOP])
    out.stop_reason = (ISOPLETH_ABOVE_SOURCE if stop & kernel.STOP_ISOPLETH_ABOVE else
                       "mixing zone" if stop & kernel.STOP_MIXING_ZONE else
                       ", ".join(text for bit, text in enumerate(STOP_TEXTS) if stop >> bit & 1))

    # ---- the texts: step-0 memos (spec §9.2), the §6.5 notes, then the finish shared with run_um3
    memos = out.memos
    start_memos(memos, info[kernel.I_FROUDE], info[kernel.I_STRAT], n_ports, info[kernel.I_SPACING],
                info[kernel.I_DIAMETER0], info[kernel.I_PORT_SPEED], info[kernel.I_AMB_SPEED0],
                info[kernel.I_RHO_EFF], amb_in.bottom_depth, bool(flags & kernel.F_CURRENT_SMALL))
    if flags & kernel.F_VERTICAL_STILL:
        memos.append("Vertical discharge in still water, projection plane set to the y-z plane")
    elif flags & kernel.F_VERTICAL_CURRENT:
        memos.append("Vertical discharge, projection plane defined by current")
    if stop & kernel.STOP_ISOPLETH_ABOVE:
        memos.append("Isopleth value above the effluent concentration: no plume inside the isopleth, run stopped.")
    column = AmbientColumn(amb_in, vector_averaging=st.current_vector_averaging, at_equilibrium=eq,
                           bacteria_model=st.bacteria_model, light_absorb_coeff=st.light_absorb_coeff)
    column.surfaced = bool(flags & kernel.F_SURFACED)
    amb = AmbientState()
    amb.depth, amb.decay_rate = info[kernel.I_AMB_DEPTH], info[kernel.I_AMB_DECAY]
    k = kernel
    finish_output(out, column, amb, bool(flags & k.F_AMBIENT_EXCEEDS), int(info[k.I_BOTTOM_STEP]),
                  (info[k.I_ALX], info[k.I_ALY], info[k.I_ALZ]), (dif.offset_x, dif.offset_y), dict(
                      x=info[k.I_X], y=info[k.I_Y], z=info[k.I_Z], vx=info[k.I_VX], vy=info[k.I_VY],
                      vz=info[k.I_VZ], diameter=info[k.I_DIAMETER], mass=info[k.I_MASS],
                      initial_mass=info[k.I_MASS0], pollutant_mass=info[k.I_POLLUTANT],
                      initial_pollutant_mass=info[k.I_POLLUTANT0], dilution=info[k.I_DILUTION],
                      concentration=info[k.I_CONC], density=info[k.I_RHO], effluent_density=info[k.I_RHO_EFF],
                      isopleth_factor=info[k.I_IOTA], total_time=info[k.I_TIME],
                      reached_mixing_zone=bool(flags & k.F_ATVMXZ),
                      initial_velocity=(info[k.I_V0X], info[k.I_V0Y], info[k.I_V0Z])))
    return out


def _status_text(bits: int) -> str:
    text = _status_texts.get(bits)
    if text is None:
        text = _status_texts[bits] = ", ".join(t for bit, t in enumerate(ROW_STATUS_TEXTS) if bits >> bit & 1)
    return text


def _tiny_case() -> EngineCase:
    """A small case of every argument type the loop is called with (compiles the one signature)."""
    layer = VariableProfile(depths=(0.0, 10.0), values=(0.0, 0.0))
    profiles = {name: layer for name in ("current_speed", "current_dir", "bg_conc", "decay_rate", "ff_velocity",
                                         "ff_dir", "ff_diff_coeff")}
    profiles["salinity"] = VariableProfile(depths=(0.0, 10.0), values=(33.0, 34.0))
    profiles["temperature"] = VariableProfile(depths=(0.0, 10.0), values=(15.0, 12.0))
    return EngineCase(Settings(), Diffuser(diameter=0.1, depth=10.0, effluent_flow=0.01, vertical_angle=45.0,
                                           concentration=1.0, isopleth=0.001),
                      Ambient(profiles=profiles, bottom_depth=12.0))
