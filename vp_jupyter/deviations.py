"""The deliberate differences from the reference Python port of Visual Plumes (README, "Deviations from the
reference Python port"; spec §13), each with the test of whether it touches a given case — so a report
lists only the deviations that apply to the case it describes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    from .engine.types import EngineCase
    from .inputs import Case


@dataclass(frozen=True)
class Deviation:
    """One difference: `ref` (spec §13 item or section), `what` changed, and when it `applies`."""
    ref: str
    what: str
    applies: Callable[["Case", "list[EngineCase]"], bool]


def _always(case: "Case", engine: "list[EngineCase]") -> bool:
    return True


def _any(test: Callable[["EngineCase"], bool]) -> Callable[["Case", "list[EngineCase]"], bool]:
    return lambda case, engine: any(test(e) for e in engine)



DEVIATIONS: tuple[Deviation, ...] = (
    Deviation("§13 (original program)", "The isopleth factor is evaluated at the current step, so 'isopleth "
              "closed' comes one step earlier than in the reference port, as in the original program.", _always),
    Deviation("§13 (original program)", "Bottom and surface contact use the current plume diameter, which "
              "reproduces the original program's bottom-hit step.", _always),
    Deviation("§13 item 4", "The p,S,T equation of state uses the published UNESCO EOS-80 coefficients (the "
              "reference port has three transcription errors).", _any(lambda e: not e.settings.at_equilibrium)),
    Deviation("§13 item 5", "Salinity given as conductivity or density, T90 and ly/hr decay rates convert "
              "correctly (the reference port returned sentinels, disabled decay or crashed).",
              lambda case, engine: (any(e.ambient.decay_is_light for e in engine)
                                    or case.ambient_units["salinity"].label.lower() not in ("psu", "ppt")
                                    or case.ambient_units["decay_rate"].label.lower() not in ("s-1", "1/s"))),
    Deviation("§13 items 6, 20", "The Gaussian and 3/2-power similarity profiles work (the reference port took "
              "log 0 or failed).", _any(lambda e: e.settings.similarity_profile != "DEFAULT")),
    Deviation("§13 item 8", "Effective net dilution is c₀/c (the reference port multiplied it by the initial "
              "element mass).", _any(lambda e: e.settings.report_effective_dillution)),
    Deviation("§13 item 9", "The horizontal angle is the direction of travel, 0-360° counter-clockwise from "
              "east; vector-averaged current directions turn the shorter way.", _always),
    Deviation("§13 item 10", "Brooks far field: the ambient is evaluated once in SI at the surface; the plume "
              "moves with the far-field current and distances are measured from the source; output marks carry "
              "their own state; decay over the whole travel time.", _any(lambda e: e.settings.brooks_far_field)),
    Deviation("§13 item 11", "Tidal pollution buildup: the added-volume array shifts with the pollutant array, "
              "decay is exact, a plume carried upstream moves the storage window.",
              _any(lambda e: e.settings.tidal_pollution_buildup)),
    Deviation("§13 item 12", "Mixing-zone and far-field distances are measured from the source; a mixing-zone "
              "distance of 0 means no mixing-zone stop.", _always),
    Deviation("§12", "Every time-series variable works (port depth, effluent and ambient salinity and "
              "temperature, Brooks with ambient series), each ambient series in its own depth units.",
              lambda case, engine: bool(case.series_info())),
)


def applicable(case: "Case", engine_cases: "list[EngineCase] | None" = None) -> list[Deviation]:
    """The deviations that touch `case` (its engine cases are computed when not given)."""
    engine = list(engine_cases) if engine_cases is not None else case.engine_cases()
    return [d for d in DEVIATIONS if d.applies(case, engine)]
