"""The Visual Plumes style text report of a result (legacy-http-api.md §5.5, Appendix A layout).

Sections: the model-parameter block (and time-series block), then per case the diffuser table, the
ambient table, the step-0 memos, the plume table, the post-run memos and, when the Brooks far field ran,
its memos and table; after the cases, the tidal-pollution-buildup memos when TPB ran. Numbers are formatted as the
legacy back end did, so the text can be compared with Visual Plumes output by eye or by diff.
The report is built in a local list of lines; nothing touches ``sys.stdout``.
"""
from __future__ import annotations

import itertools
import math
import operator
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .engine.seawater import density
from .engine.types import CaseOutput, EngineCase, FarFieldOutput, Settings

if TYPE_CHECKING:  # pragma: no cover
    from .results import Result
    from .units import Unit

RULE = "-" * 51
_LABEL_WIDTH = 30  # "Report effective dilution:    " — values of the parameter block start here

_BACTERIA_MODEL_LABELS = {
    "COLIFORM_MANCINI": "Mancini (1978) coliform model",
    "COLIFORM_301H": "301(h) TSD (1994) coliform (for saltwater, Eqn B-68)",
    "ENTEROCCOUS_301H": "301(h) TSD (1994) enterococcus (for saltwater, Eqn B-69)",
}
_SIMILARITY_PROFILE_LABELS = {
    "DEFAULT": "default profile",
    "POWER_3_2": "3/2 power profile",
    "GAUSSIAN": "Gaussian profile",
}
_MAX_REVERSALS_LABELS = {
    "INITIAL_TRAP_LEVEL": "to initial trap level",
    "SECOND_TRAP_LEVEL": "to 2nd trap level",
    "MAX_RISE_OR_FALL": "to max rise or fall",
    "SECOND_MAX_RISE_OR_FALL": "to 2nd max rise or fall",
}
_FARFIELD_DIFFUSIVITY_LABELS = {
    "CONSTANT": "constant diffusivity",
    "POWER_4_3": "4/3 power diffusivity",
}


def text_report(result: "Result", columns: "JoinedColumns | None" = None) -> str:
    """The whole report as one string; every line ends with a newline. `columns`: the joined columns of the
    result's outputs if the caller has them."""
    case = result.case
    case_dict = case.to_dict()
    settings = result.engine_cases[0].settings
    lines = parameter_block(settings, case_dict, case.series_info())
    lines.append("")
    has_series = bool(case.series_info())
    diffuser_tables = _Memo(lambda engine_case: diffuser_table(engine_case, case))
    ambient_tables = _Memo(lambda item: _ambient_lines(case, *item))
    plume_header, plume_rows = plume_tables(result.outputs, case, columns)
    farfield_spec = _farfield_columns(case, settings) if any(f.was_run for f in result.farfield_outputs) else []
    for index, (output, engine_case, start) in enumerate(zip(result.outputs, result.engine_cases, result.case_times)):
        number = index + 1
        lines += ["", RULE, f"Case {number} (+{start / 3600.0:.2f} hrs):", RULE]
        if has_series:
            indices = ", ".join(map(str, case.series_rows(index)))
            lines.append(f"Timeseries indices: {indices}")
        lines.append("")
        lines += diffuser_tables(engine_case, _diffuser_key(engine_case))
        lines.append("")
        layers = case.layer_table(index)
        lines += ambient_tables((layers, engine_case.settings), _ambient_key(layers, engine_case.settings))
        memos = list(output.memos) + ([output.error] if output.error else [])
        if memos:
            lines.append("")
            lines += memos
        lines.append("")
        lines += plume_header
        lines += plume_rows[index]
        if output.postmemos:
            lines.append("")
            lines += output.postmemos
        farfield = result.farfield_outputs[index] if index < len(result.farfield_outputs) else None
        if farfield is not None and farfield.was_run:
            lines += ["", *farfield.memos, ""]
            lines += _farfield_lines(farfield, farfield_spec)
    if result.tidal.was_run:
        lines += ["", RULE, "", *result.tidal.memos]
    return "\n".join(lines) + "\n"


class _Memo:
    """`build(item)` remembered by a key of the item's values: the cases of a series often share a table."""

    def __init__(self, build: Callable[[Any], list[str]]):
        self.build, self.built = build, {}

    def __call__(self, item: Any, key: Any) -> list[str]:
        lines = self.built.get(key)
        if lines is None:
            lines = self.built[key] = self.build(item)
        return lines


# -- 1. parameter block ----------------------------------------------------------------------------

def _setting(label: str, value: Any) -> str:
    return f"{label:<{_LABEL_WIDTH}}{value}"


def parameter_block(settings: Settings, case_dict: dict[str, Any],
                    series_info: Sequence[dict[str, Any]] = ()) -> list[str]:
    """The "Model Parameters" echo (and "Timeseries Data" block) of legacy §5.5 part 1."""
    s = settings
    lines = [
        RULE, "Model Parameters", RULE,
        _setting("Report effective dilution:", s.report_effective_dillution),
        _setting("Current vector averaging:", s.current_vector_averaging),
        _setting("Allow induced current:", s.allow_induced_current),
        _setting("Bacteria model:", _BACTERIA_MODEL_LABELS.get(s.bacteria_model, s.bacteria_model)),
        _setting("Equation of state:", "S,T" if s.at_equilibrium else "p,S,T"),
        _setting("Similarity profile:", _SIMILARITY_PROFILE_LABELS.get(s.similarity_profile, s.similarity_profile)),
        "Coefficients",
        _setting("   Diffuser port contraction:", float(s.contraction_coeff)),
        _setting("   Light absorption:", float(s.light_absorb_coeff)),
        _setting("   UM3 aspiration:", float(s.aspiration_coeff)),
        "Stop conditions",
        _setting("   Max. reported dilution:", float(s.max_dilution)),
        _setting("   Max. vertical reversals:", _MAX_REVERSALS_LABELS.get(s.max_reversals, s.max_reversals)),
        _setting("   Stop on bottom hit:", s.stop_on_bottom_hit),
        _setting("   Don't stop on surface hit:", s.dont_stop_on_surface_hit),
    ]
    if s.brooks_far_field:
        increment = "ALL" if s.output_all_ff_increments else f"{float(s.ff_increment)} m"
        lines += [
            "Brooks far-field solution",
            _setting("   Far-field increment:", increment),
            _setting("   Estimate far-field bg.:", s.estimate_ff_background),
            _setting("   Far-field diffusivity:",
                     _FARFIELD_DIFFUSIVITY_LABELS.get(s.farfield_diffusivity, s.farfield_diffusivity)),
        ]
    elif s.tidal_pollution_buildup:
        lines += [
            "Tidal pollution buildup",
            _setting("   Channel width:", f"{float(s.tpb_channel_width)} m"),
            _setting("   Channel seg. length:", f"{float(s.tpb_segment_length)} m"),
            _setting("   Upstream dir.:", f"{float(s.tpb_upstream_dir)}°"),
            _setting("   Coast bin:", int(s.tpb_coast_bin)),
            _setting("   Coast concentration:", float(s.tpb_coast_concentration)),
            _setting("   Mixing zone depth:", f"{float(s.tpb_mixing_zone_ceil)} m"),
        ]
    else:
        lines.append("No far-field model selection")
    if s.use_shore_vector:
        lines.append(f"Shore vector {float(s.dist_to_shore)} m at {float(s.dir_to_shore)}°")
    lines.append(f"Elevation projection plane at {s.elevation_proj_plane:g}°")
    lines.append(f"Output each {float(s.write_step_freq)} steps")
    lines += timeseries_block(case_dict, series_info)
    return lines


def timeseries_block(case_dict: dict[str, Any], series_info: Sequence[dict[str, Any]]) -> list[str]:
    """The "Timeseries Data" lines (empty without a time series); `series_info` is `Case.series_info()`."""
    series_spec = case_dict.get("timeseries") or {}
    if not series_spec:
        return []
    units = series_spec.get("units") or "s"
    lines = [
        "", RULE, "Timeseries Data", RULE,
        f"Start/end time: {_float(series_spec.get('start_time'))} {series_spec.get('start_units') or units} / "
        f"{_float(series_spec.get('end_time'))} {series_spec.get('end_units') or units}",
        f"Time increment: {_float(series_spec.get('time_increment'))} {series_spec.get('increment_units') or units}",
    ]
    for number, series in enumerate(series_info, start=1):
        lines.append(f"{number}. {series['where'].capitalize()} timeseries ({series['variable']})")
        lines.append(f"   units:          {series.get('units', '')}")
        if series["where"] == "ambient":
            word = "depth(s)" if series.get("z_is_depth", True) else "height(s)"
            depths = ", ".join(str(float(d)) for d in series["levels"])
            lines.append(f"   {word + ':':<16}{depths} {series.get('depth_units', '')}".rstrip())
        increment = float(series.get("increment_hours") or 1.0)
        lines.append(f"   increment:      {increment} hrs")
        lines.append(f"   cycling period: {series['rows']} -> {series['rows'] * increment} hrs")
    return lines


def _float(value: Any) -> float:
    return float(value or 0.0)


# -- 2. per-case tables ----------------------------------------------------------------------------

def _units_cell(unit_label: str) -> str:
    return f"({unit_label})" if unit_label else ""


def _table(columns: Sequence[tuple[str, str, int]], rows: Sequence[Sequence[str]]) -> list[str]:
    """Header, units and value lines; columns are (label, unit label, width), cells right-aligned."""
    line = " ".join(f"{{:>{width}}}" for _, _, width in columns).format     # one format per table, not per cell


    return [line(*(c[0] for c in columns)), line(*(_units_cell(c[1]) for c in columns)),
            *(line(*row) for row in rows)]


_DIFFUSER_VALUES = operator.attrgetter("diameter", "vertical_angle", "horizontal_angle", "offset_x", "offset_y",
                                       "num_ports", "port_spacing", "acute_mixing_zone", "isopleth", "depth",
                                       "effluent_flow", "salinity", "temperature", "concentration")


def _diffuser_key(engine_case: EngineCase) -> tuple:
    """Everything `diffuser_table` reads of a case but the case's units (one per report)."""
    return _DIFFUSER_VALUES(engine_case.diffuser)


def diffuser_table(engine_case: EngineCase, case: Any) -> list[str]:
    """The one-row diffuser table in the case's units (legacy §5.3 / §5.5)."""
    from .units import from_si

    d = engine_case.diffuser
    units = case.diffuser_units
    context = {"temperature_c": d.temperature, "salinity_psu": d.salinity, "depth_m": d.depth}
    # (label, SI value, unit or None for unitless, decimals)
    fields: list[tuple[str, float, Unit | None, int]] = [
        ("Port diameter", d.diameter, units["diameter"], 5),
        ("Vertical angle", d.vertical_angle, units["vertical_angle"], 1),
        ("Horizontal angle", d.horizontal_angle, units["horizontal_angle"], 1),
        ("X-offset", d.offset_x, units["offset_x"], 1),
        ("Y-offset", d.offset_y, units["offset_y"], 1),
        ("Num. ports", float(d.num_ports), None, 1),
    ]
    if d.num_ports > 1:
        fields.append(("Port spacing", d.port_spacing, units["port_spacing"], 1))
    fields += [
        ("Mixing zone distance", d.acute_mixing_zone, units["acute_mixing_zone"], 1),
        ("Isopleth", d.isopleth, units["isopleth"], 1),  # the unit of the quantity it bounds
        ("Port depth", d.depth, units["depth"], 1),
        ("Total flow", d.effluent_flow, units["effluent_flow"], 5),
        ("Salinity", d.salinity, units["salinity"], 1),
        ("Temperature", d.temperature, units["temperature"], 1),
        ("Pollutant", d.concentration, units["concentration"], 1),
    ]
    columns, cells = [], []
    for index, (label, si_value, unit, decimals) in enumerate(fields):
        value = si_value if unit is None else from_si(si_value, unit, **context)
        columns.append((label, unit.label if unit is not None else "", len(label) + (index > 0)))
        cells.append(f"{value:.{decimals}f}")
    return _table(columns, [cells])


def ambient_table(case: Any, index: int, settings: Settings) -> list[str]:
    """The filled ambient layers of case `index` in the case's units, density as sigmaT (legacy §5.5).

    Far-field speed and direction are left out of the text, as in Visual Plumes; the dispersion
    coefficient is shown when the Brooks far field is on.
    """
    return _ambient_lines(case, case.layer_table(index), settings)


def _ambient_key(layers: Sequence[dict[str, float]], settings: Settings) -> tuple:
    """Everything `_ambient_lines` reads of a case but the case's units (one per report)."""
    return (settings.brooks_far_field, settings.at_equilibrium, *(tuple(layer.items()) for layer in layers))


def _ambient_lines(case: Any, layers: Sequence[dict[str, float]], settings: Settings) -> list[str]:
    from .units import to_si

    units = case.ambient_units
    variables = [("Current speed", "current_speed", 4), ("Current direction", "current_dir", 0),
                 ("Salinity", "salinity", 2), ("Temperature", "temperature", 2),
                 ("Background concentration", "bg_conc", 2), ("Decay rate", "decay_rate", 4)]
    if settings.brooks_far_field:
        variables.append(("Dispersion", "ff_diff_coeff", 1))
    columns = [("Depth", units["z"].label, 7)]
    columns += [(label, units[name].label, max(7, len(label)) + 1) for label, name, _ in variables]
    columns.append(("Density", "sigmaT", 8))

    rows = []
    for layer in layers:
        temperature = to_si(layer["temperature"], units["temperature"])
        salinity = to_si(layer["salinity"], units["salinity"], temperature_c=temperature)
        depth_m = to_si(layer["depth"], units["z"])
        sigma_t = density(salinity, temperature, depth_m, settings.at_equilibrium) - 1000.0
        rows.append([f"{layer['depth']:.3f}",
                     *(f"{layer[name]:.{decimals}f}" for _, name, decimals in variables),
                     f"{sigma_t:.4f}"])
    return _table(columns, rows)


_COLUMNS_OF = operator.attrgetter("columns")


class JoinedColumns(dict):
    """The engine columns of several outputs, each joined (the rows of one output after the other) when first
    read: ``columns[name]``. Shared by the tables built from the same outputs; the lists are not to be changed."""

    def __init__(self, outputs: Sequence[CaseOutput]):
        super().__init__()
        self.outputs = outputs

    def __missing__(self, name: str) -> list[float]:
        values = self[name] = list(itertools.chain.from_iterable(map(operator.itemgetter(name),
                                                                     map(_COLUMNS_OF, self.outputs))))
        return values


def _shown(values: Sequence[float], convert: Callable[[float], float]) -> list[float]:
    """`convert` of each finite value; a non-finite one becomes NaN (printed "nan", whatever `convert` would give)."""
    return [convert(value) if math.isfinite(value) else math.nan for value in values]


def _plume_columns(case: Any) -> list[tuple[str, str, str, int, str, Callable[[JoinedColumns], list[float]]]]:
    """The 14 legacy plume columns: (label, engine column, unit label, width, format spec, outputs -> the shown
    values of the column over the rows of all outputs joined, NaN where the SI value is not finite)."""
    from .units import from_si, parse_unit

    diffuser, ambient = case.diffuser_units, case.ambient_units
    feet = parse_unit("ft", "length")

    def scaled(column: str, factor: float, minus: float = 0.0) -> Callable[[JoinedColumns], list[float]]:
        def shown(columns: JoinedColumns) -> list[float]:
            values = columns[column]
            if not math.isfinite(sum(values)):        # a finite sum: every value is finite
                return _shown(values, lambda value: value * factor - minus)
            if minus:
                return [value * factor - minus for value in values]
            return values if factor == 1.0 else [value * factor for value in values]
        return shown

    def converted(column: str, unit: "Unit", prefix: str = "") -> Callable[[JoinedColumns], list[float]]:
        if unit.rule == "factor" and unit.kind != "angle":      # what from_si does, without its dispatch
            return scaled(column, unit.factor)
        if unit.rule == "celsius":
            return scaled(column, 1.0)

        def shown(columns: JoinedColumns) -> list[float]:
            context = zip(columns[prefix + "temperature"], columns[prefix + "salinity"], columns["depth"])
            return [from_si(value, unit, temperature_c=t, salinity_psu=s, depth_m=d) if math.isfinite(value)
                    else math.nan for value, (t, s, d) in zip(columns[column], context)]
        return shown

    radians = diffuser["vertical_angle"].label in ("rad", "s-rad")
    angle_unit = "rad" if radians else "deg"

    def vertical_angle(columns: JoinedColumns) -> list[float]:
        return _shown(columns["vertical_angle"], math.radians if radians else float)

    return [
        ("Depth", "depth", diffuser["depth"].label, 9, ",.3f", converted("depth", diffuser["depth"])),
        ("Width", "diameter", diffuser["diameter"].label, 9, ",.4f", converted("diameter", diffuser["diameter"])),
        ("V-angle", "vertical_angle", angle_unit, 8, ".3f", vertical_angle),
        ("Salinity", "salinity", ambient["salinity"].label, 9, ".2f", converted("salinity", ambient["salinity"])),
        ("Temp.", "temperature", ambient["temperature"].label, 9, ".2f",
         converted("temperature", ambient["temperature"])),
        ("Pollutant", "concentration", diffuser["concentration"].label, 9, ".3f",
         converted("concentration", diffuser["concentration"])),
        ("Density", "density", "sigmaT", 9, ".4f", scaled("density", 1.0, 1000.0)),
        ("Amb-den", "ambient_density", "sigmaT", 9, ".4f", scaled("ambient_density", 1.0, 1000.0)),
        ("Amb-cur", "ambient_current_speed", ambient["current_speed"].label, 9, ".3f",
         converted("ambient_current_speed", ambient["current_speed"], "ambient_")),
        ("Velocity", "velocity", "m/s", 9, ".3f", scaled("velocity", 1.0)),
        ("Dilution", "dilution", "", 9, ",.3f", scaled("dilution", 1.0)),
        ("X-pos", "x", "ft", 9, ",.3f", converted("x", feet)),
        ("Y-pos", "y", "ft", 9, ",.3f", converted("y", feet)),
        ("Iso diameter", "iso_diameter", diffuser["diameter"].label, 9, ",.3f",
         converted("iso_diameter", diffuser["diameter"])),
    ]


def plume_tables(outputs: Sequence[CaseOutput], case: Any,
                 columns: "JoinedColumns | None" = None) -> tuple[list[str], list[list[str]]]:
    """The header lines of the legacy 14-column plume table and, per output, its row lines (each ends in ``;  ``
    and the status text). Formatted a column at a time over the rows of all outputs joined, one ``%`` per row:
    ``%9.3f`` prints what ``{:>9.3f}`` does; a thousands-separated column is printed by ``format`` first unless
    none of its values reaches 999. `columns`: the joined columns of `outputs` if the caller has them."""
    spec = _plume_columns(case)
    header = _table([("Step", "", 5)] + [(label, unit, width) for label, _, unit, width, _, _ in spec], [])
    joined = JoinedColumns(outputs) if columns is None else columns
    cells, shown_columns = ["%5s"], []
    for *_, width, fmt, shown in spec:
        values = shown(joined)
        if "," in fmt and _reaches(values, 999.0):
            shown_columns.append([format(value, fmt) for value in values])
            cells.append(f"%{width}s")
        else:
            shown_columns.append(values)
            cells.append(f"%{width}{fmt.lstrip(',')}")
    row = " ".join(cells) + ";  %s"
    steps = list(itertools.chain.from_iterable(map(operator.attrgetter("steps"), outputs)))
    statuses = list(itertools.chain.from_iterable(map(operator.attrgetter("statuses"), outputs)))
    lines = list(map(row.__mod__, zip(steps, *shown_columns, statuses)))
    per_output, start = [], 0
    for output in outputs:
        per_output.append(lines[start:start + len(output.steps)])
        start += len(output.steps)
    return header, per_output


def _reaches(values: Sequence[float], size: float) -> bool:
    """Whether the magnitude of a value is `size` or more (NaN is not)."""
    if math.isfinite(sum(values)):        # no NaN: min and max are the extremes
        return bool(values) and (max(values) >= size or min(values) <= -size)
    return any(abs(value) >= size for value in values)


def plume_table(output: CaseOutput, case: Any) -> list[str]:
    """The legacy 14-column plume table of one output; every row ends in ``;  `` and the status text."""
    header, (rows,) = plume_tables([output], case)
    return header + rows


# -- 3. Brooks far field ---------------------------------------------------------------------------

_FARFIELD_DIFFUSIVITY_COLUMN = {"CONSTANT": "Eddy diffusivity", "POWER_4_3": "4/3 eddy diffusivity"}


def _farfield_columns(case: Any, settings: Settings) -> list[tuple[str, str, str, int, int, Callable[[float], float]]]:
    """The 11 legacy far-field columns (legacy §5.3 "farfield.headers"):
    (label, engine column, unit label, minimum width, decimals, SI -> shown)."""
    from .units import from_si

    diffuser, ambient = case.diffuser_units, case.ambient_units
    speed, direction, concentration = ambient["ff_velocity"], ambient["ff_dir"], diffuser["concentration"]
    background = ambient["bg_conc"]      # the ambient background unit, as the legacy far-field headers show it

    def to(unit: "Unit") -> Callable[[float], float]:
        return lambda value: from_si(value, unit)

    def same(value: float) -> float:
        return value

    diffusivity = _FARFIELD_DIFFUSIVITY_COLUMN.get(settings.farfield_diffusivity, "Eddy diffusivity")
    # minimum widths and decimals by variable (legacy §5.5): Time and Speed 8 / 2 decimals, Distance and
    # Dilution 9, Width 8 / 0 decimals, Dispersion 12 / 4, diffusivity 9 / 4, concentrations 4 decimals,
    # everything else 1 decimal
    return [
        ("Time", "time", "hr", 8, 2, lambda value: value / 3600.0),
        ("Current speed", "ff_velocity", speed.label, 8, 2, to(speed)),
        ("Current direction", "ff_dir", direction.label, 0, 1, to(direction)),
        ("Width", "width", "m", 8, 0, same),
        ("Distance", "distance", "m", 9, 1, same),
        ("Background concentration", "background", background.label, 0, 4, to(background)),
        ("Concentration", "concentration", concentration.label, 0, 4, to(concentration)),
        ("Dilution", "dilution", "", 9, 1, same),
        ("Decay rate", "decay_rate", "s-1", 0, 1, same),
        ("Dispersion", "ff_diff_coeff", "m0.67/s2", 12, 4, same),
        (diffusivity, "diffusivity_argument", "", 9, 4, same),
    ]


def farfield_table(farfield: FarFieldOutput, case: Any, settings: Settings) -> list[str]:
    """The Brooks far-field table of one case (legacy §5.5): header, units, one line per far-field row.

    Time in hours, the current in the ambient far-field speed / direction units, width and distance in m,
    background in the ambient background units, concentration in the diffuser concentration units, decay
    in s-1 (as Visual Plumes reports it), dispersion in m0.67/s2; no step column. A column is as wide as the larger of 6 and its
    label (+1 but for the first column), at least its variable's minimum width; values carry thousands
    separators.
    """
    return _farfield_lines(farfield, _farfield_columns(case, settings))


def _farfield_lines(farfield: FarFieldOutput,
                    spec: Sequence[tuple[str, str, str, int, int, Callable[[float], float]]]) -> list[str]:
    columns = [(label, unit, max(minimum, max(6, len(label)) + (index > 0)))
               for index, (label, _, unit, minimum, _, _) in enumerate(spec)]
    shown = [[format(convert(value), f",.{decimals}f") if math.isfinite(value) else "nan"
              for value in farfield.columns[name][:len(farfield.steps)]] for _, name, _, _, decimals, convert in spec]
    return _table(columns, list(zip(*shown)))
