"""A run of one or more cases: UM3, then the Brooks far field, coupled by tidal buildup (spec §10–§12).

Cases without tidal buildup are independent: `run_case` is a pure function of one EngineCase, so a
runner may spread them over processes. With tidal buildup they run in order, each fed the buildup the
previous ones left (spec §11).
"""
from __future__ import annotations

import gc
import math
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Optional, Sequence

from .farfield import run_farfield
from .tidal import TidalChannel
from .types import CaseOutput, EngineCase, FarFieldOutput, TidalOutput
from .um3_compiled import near_field, prepare


@dataclass
class SeriesOutput:
    """Everything the engine computed for a run: per-case near and far field, and the tidal buildup."""
    plumes: list[CaseOutput] = field(default_factory=list)
    farfields: list[FarFieldOutput] = field(default_factory=list)
    tidal: TidalOutput = field(default_factory=TidalOutput)


def run_case(case: EngineCase) -> tuple[CaseOutput, FarFieldOutput]:
    """Near field and, when asked for, far field of one case.

    The input layer keeps every value in a range where the model stays finite; should a case still make
    a model step fail or produce a number that is not finite, the case is refused (`CaseOutput.error`,
    naming the model step and the column) instead of returning those numbers as a result."""
    try:
        plume = near_field(case)
    except (ArithmeticError, ValueError) as err:
        return CaseOutput(error=f"the near-field (UM3) model failed ({err}): the inputs are outside the "
                                f"range it can handle"), FarFieldOutput()
    plume.error = plume.error or _non_finite("near-field (UM3)", plume.steps, plume.columns)
    if not (case.settings.brooks_far_field and plume.final is not None and not plume.error):
        return plume, FarFieldOutput()
    try:
        farfield = run_farfield(case, plume.final)
    except (ArithmeticError, ValueError) as err:
        plume.error = f"the Brooks far-field model failed ({err}): the inputs are outside the range it can handle"
        return plume, FarFieldOutput()
    plume.error = _non_finite("Brooks far-field", farfield.steps, farfield.columns)
    return plume, farfield


def _non_finite(model: str, steps: Sequence[int], columns: dict[str, list[float]]) -> Optional[str]:
    """The refusal text for the first written value that is not finite, or None."""
    for name, values in columns.items():
        if math.isfinite(sum(values)):      # an infinity or a NaN anywhere makes the sum one (fast check)
            continue
        for step, value in zip(steps, values):
            if not math.isfinite(value):
                return (f"the {model} model produced a {name} of {value} at step {step}: the inputs are "
                        f"outside the range it can handle")
    return None


def couples_cases(cases: Sequence[EngineCase]) -> bool:
    """True when cases must run in order (tidal buildup carries state from one case to the next)."""
    return bool(cases) and cases[0].settings.tidal_pollution_buildup


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while cases run: their outputs are plain lists and dicts without
    cycles, and the collector walked them over and over as they piled up (a fifth of the CPU time of a
    year of hourly cases, in one series or in chunks of 250)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@cyclic_gc_paused()
def run_series(cases: Sequence[EngineCase], time_step: float = 1.0,
               progress: Optional[Callable[[int, int], None]] = None) -> SeriesOutput:
    """Run every case in order; `time_step` (s) is the time between cases, used by the tidal buildup."""
    result = SeriesOutput()
    prepare(len(cases))
    channel = None
    if couples_cases(cases):
        first = cases[0]
        st = first.settings
        channel = TidalChannel(st.tpb_segment_length, st.tpb_channel_width, first.ambient.bottom_depth,
                               st.tpb_upstream_dir, st.tpb_coast_bin, st.tpb_coast_concentration, time_step)
        result.tidal.was_run = True
    buildup = 0.0
    for number, case in enumerate(cases, start=1):
        if channel is not None:
            case = replace(case, buildup=buildup)
            result.tidal.buildup.append(buildup)
        plume, farfield = run_case(case)
        result.plumes.append(plume)
        result.farfields.append(farfield)
        if channel is not None and plume.final is not None:
            final = plume.final
            buildup = channel.after_case(case.diffuser.effluent_flow, final.initial_mass,
                                         final.initial_pollutant_mass, final.ambient["current_speed"],
                                         final.ambient["current_dir"], final.ambient["decay_rate"])
        if progress is not None:
            progress(number, len(cases))
    if channel is not None:
        result.tidal.highest = channel.highest
        result.tidal.memos = channel.memos(len(cases))
    return result
