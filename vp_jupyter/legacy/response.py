"""The legacy response (legacy-http-api.md §5): a `Result` as the result object the unmodified web UI reads
(diffuser, ambient, plume and far-field blocks in the case's units, memos, the 17 graph series, the text
report) and its double-encoded success body (Q4)."""
from __future__ import annotations

import json
import math
import operator
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .. import units as u
from ..engine.seawater import density
from ..engine.series import cyclic_gc_paused
from ..inputs import Case
from ..report import JoinedColumns, parameter_block, text_report

if TYPE_CHECKING:  # pragma: no cover
    from ..engine.types import CaseOutput
    from ..results import Result

# §5.2 "units" class names and §2.8 numeric codes ("in_units") of the project's unit labels
_UNIT_CLASS = {"length": "Length", "speed": "Speed", "angle": "Angle", "time": "Time", "flow": "FlowRate",
               "salinity": "Salinity", "temperature": "Temperature", "concentration": "Concentration",
               "decay_rate": "DecayRate", "diffusivity": "EddyDiffusivity", "density": "Density",
               "unitless": "Unitless", "isopleth": "Isopleth", "mass": "Mass"}
_UNIT_CODE: dict[tuple[str, str], float] = {
    ("length", "m"): 1, ("length", "cm"): 100, ("length", "ft"): 3.2808, ("length", "in"): 39.37,
    ("length", "ftm"): 0.5468,
    ("speed", "m/s"): 1, ("speed", "cm/s"): 100, ("speed", "ftm/s"): 1 / 0.514444, ("speed", "kts"): 1.94384,
    ("speed", "mph"): 2.2369363, ("speed", "ft/s"): 3.2808,
    ("angle", "deg"): 1, ("angle", "rad"): math.pi / 180, ("angle", "s-deg"): -1, ("angle", "s-rad"): -math.pi / 180,
    ("time", "s"): 1, ("time", "min"): 1 / 60, ("time", "hr"): 1 / 3600, ("time", "d"): 1 / 86400,
    ("flow", "MGD"): 22.824465, ("flow", "m3/s"): 1, ("flow", "MLD"): 86.4, ("flow", "ft3/s"): 35.314667,
    ("flow", "bbl/d"): 86400 / 0.15898284,
    ("salinity", "PSU"): 1, ("salinity", "mmhos/cm"): 2, ("salinity", "kg/m3"): 3, ("salinity", "sigmaT"): 4,
    ("salinity", "lbs/ft3"): 5,
    ("concentration", "ppm"): 1e6, ("concentration", "kg/kg"): 1, ("concentration", "ppb"): 1e9,
    ("concentration", "%"): 100, ("concentration", "col/dl"): -1,
    ("temperature", "°C"): 1, ("temperature", "°F"): 3, ("temperature", "°K"): 2,
    ("decay_rate", "s-1"): 1, ("decay_rate", "d-1"): 86400, ("decay_rate", "T90h"): -2.30258509 / 3600,
    ("decay_rate", "ly/hr"): -1, ("decay_rate", "hr-1"): 3600,
    ("diffusivity", "m0.67/s2"): 1, ("density", "sigmaT"): -1, ("unitless", ""): 1,
}
_SIGMA_T = u.parse_unit("sigmaT", "density")
_FEET = u.parse_unit("ft", "length")
_METRES = u.parse_unit("m", "length")
_HOURS = u.parse_unit("hr", "time")
_UNITLESS = u.si_unit("unitless")


def _unit_fields(unit: "u.Unit") -> dict[str, Any]:
    return {"units": _UNIT_CLASS.get(unit.kind, unit.kind), "in_units": _UNIT_CODE.get((unit.kind, unit.label), 1),
            "units_label": unit.label}


def _header(name: str, label: str, unit: "u.Unit", regime: "str | None" = None) -> dict[str, Any]:
    head = {"regime": regime} if regime is not None else {}
    return {**head, "name": name, "label": label, **_unit_fields(unit)}


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _convert(value: float, unit: "u.Unit", **context: Any) -> "float | None":
    """SI -> `unit`, None for a missing or non-finite value or one that cannot be converted."""
    if value is None or not math.isfinite(value):
        return None
    try:
        result = u.from_si(value, unit, **context)
    except (ValueError, ArithmeticError):
        return None
    return result if math.isfinite(result) else None


def _signed_angle(value: float, unit: "u.Unit") -> "float | None":
    """A vertical angle (signed, -90..90 deg) in deg or rad without the [0, 360) wrap of `from_si`."""
    if value is None or not math.isfinite(value):
        return None
    degrees = (value + 180.0) % 360.0 - 180.0
    return math.radians(degrees) if unit.label in ("rad", "s-rad") else degrees


# §5.3 diffuser columns: (name, label); port_spacing only with several ports
_DIFFUSER_COLUMNS = (("diameter", "Port diameter"), ("vertical_angle", "Vertical angle"),
                     ("horizontal_angle", "Horizontal angle"), ("offset_x", "X-offset"), ("offset_y", "Y-offset"),
                     ("num_ports", "Num. ports"), ("port_spacing", "Port spacing"),
                     ("acute_mixing_zone", "Mixing zone distance"), ("isopleth", "Isopleth"),
                     ("depth", "Port depth"), ("effluent_flow", "Total flow"), ("salinity", "Salinity"),
                     ("temperature", "Temperature"), ("concentration", "Pollutant"))
# §5.3 ambient columns: (name, label, Brooks only); density last
_AMBIENT_COLUMNS = (("current_speed", "Current speed", False), ("current_dir", "Current direction", False),
                    ("salinity", "Salinity", False), ("temperature", "Temperature", False),
                    ("bg_conc", "Background concentration", False), ("decay_rate", "Decay rate", False),
                    ("ff_velocity", "Far-field speed", True), ("ff_dir", "Far-field direction", True),
                    ("ff_diff_coeff", "Dispersion", True))


def diffuser_block(result: "Result") -> dict[str, Any]:
    case, engine_cases = result.case, result.engine_cases
    units = case.diffuser_units
    several = engine_cases[0].diffuser.num_ports > 1
    columns = [(n, label) for n, label in _DIFFUSER_COLUMNS if n != "port_spacing" or several]
    headers = [_header(n, label, _UNITLESS if n == "num_ports" else units[n]) for n, label in columns]
    values = operator.attrgetter(*(name for name, _ in columns), "temperature")
    built: dict[tuple, list[Any]] = {}        # the cases of a series often share a diffuser
    outputs = []
    for engine_case in engine_cases:
        d = engine_case.diffuser
        key = values(d)
        row = built.get(key)
        if row is None:
            row = built[key] = []
            for name, _ in columns:
                if name == "num_ports":
                    row.append(int(d.num_ports))
                elif name == "vertical_angle":
                    row.append(_signed_angle(d.vertical_angle, units[name]))
                else:
                    row.append(_convert(getattr(d, name), units[name], temperature_c=d.temperature))
        outputs.append(list(row))
    return {"headers": headers, "outputs": outputs}


def ambient_block(result: "Result") -> dict[str, Any]:
    case = result.case
    units = case.ambient_units
    brooks = result.engine_cases[0].settings.brooks_far_field
    columns = [(n, label) for n, label, far in _AMBIENT_COLUMNS if brooks or not far]
    headers = [_header("depth", "Depth", units["z"])]
    headers += [_header(n, label, units[n]) for n, label in columns]
    headers.append(_header("density", "Density", _SIGMA_T))
    built: dict[tuple, list[list[Any]]] = {}      # the cases of a series often share their layers
    outputs = []
    for index, engine_case in enumerate(result.engine_cases):
        layers = case.layer_table(index)
        at_equilibrium = engine_case.settings.at_equilibrium
        key = (at_equilibrium, *(tuple(layer.items()) for layer in layers))
        levels = built.get(key)
        if levels is None:
            levels = built[key] = [_ambient_level(layer, columns, units, at_equilibrium) for layer in layers]
        outputs.append([list(level) for level in levels])
    return {"headers": headers, "outputs": outputs}


def _ambient_level(layer: Mapping[str, float], columns: Sequence[tuple[str, str]], units: Mapping[str, "u.Unit"],
                   at_equilibrium: bool) -> list[Any]:
    """One ambient level of §5.3: depth, the variables of `columns`, density as sigmaT (None if it fails)."""
    row = [_finite(layer["depth"])] + [_finite(layer[n]) for n, _ in columns]
    try:       # density as the ambient table of the text report computes it (sigmaT)
        temperature = u.to_si(layer["temperature"], units["temperature"])
        salinity = u.to_si(layer["salinity"], units["salinity"], temperature_c=temperature)
        depth_m = u.to_si(layer["depth"], units["z"])
        sigma_t = density(salinity, temperature, depth_m, at_equilibrium) - 1000.0
    except (ValueError, ArithmeticError, TypeError):
        sigma_t = None
    return row + [_finite(sigma_t)]


def _plume_spec(case: Case) -> list[tuple[str, str, str, str, "u.Unit", Callable[[Mapping[str, Sequence[float]]], list]]]:
    """§5.3 / Q6: the 14 plume columns (label, regime, name, engine column, unit, engine columns -> the
    column of shown values)."""
    d, a = case.diffuser_units, case.ambient_units

    def to(unit: "u.Unit", column: str, temperature: str = "temperature") -> Callable[[Mapping], list]:
        if unit.rule == "factor" and unit.kind != "angle":     # the bulk of the values: one multiply each
            return lambda columns: _scaled(columns[column], unit.factor)
        if unit.rule == "celsius":                              # from_si returns the value
            return lambda columns: _scaled(columns[column], 1.0)
        if unit.rule == "sigma_t" and unit.kind == "density":   # from_si subtracts 1000
            return lambda columns: _scaled(columns[column], 1.0, 1000.0)
        return lambda columns: [_convert(v, unit, temperature_c=t)
                                for v, t in zip(columns[column], columns[temperature])]

    def finite(column: str) -> Callable[[Mapping], list]:
        return lambda columns: _finite_values(columns[column])

    radians = d["vertical_angle"].label in ("rad", "s-rad")

    def vertical_angle(columns: Mapping[str, Sequence[float]]) -> list:
        # _signed_angle without a call per value
        if radians:
            return [math.radians((v + 180.0) % 360.0 - 180.0) if math.isfinite(v) else None
                    for v in columns["vertical_angle"]]
        return [(v + 180.0) % 360.0 - 180.0 if math.isfinite(v) else None for v in columns["vertical_angle"]]

    return [
        ("Depth", "element", "depth", "depth", d["depth"], to(d["depth"], "depth")),
        ("Width", "element", "diameter", "diameter", d["diameter"], to(d["diameter"], "diameter")),
        ("V-angle", "element", "vertical_angle", "vertical_angle", d["vertical_angle"],
         vertical_angle),
        ("Salinity", "element", "salinity", "salinity", a["salinity"], to(a["salinity"], "salinity")),
        ("Temp.", "element", "temperature", "temperature", a["temperature"], to(a["temperature"], "temperature")),
        ("Pollutant", "element", "concentration", "concentration", d["concentration"],
         to(d["concentration"], "concentration")),
        ("Density", "element", "density", "density", _SIGMA_T, to(_SIGMA_T, "density")),
        ("Amb-den", "ambient", "density", "ambient_density", _SIGMA_T, to(_SIGMA_T, "ambient_density")),
        ("Amb-cur", "ambient", "current_speed", "ambient_current_speed", a["current_speed"],
         to(a["current_speed"], "ambient_current_speed", "ambient_temperature")),
        ("Velocity", "element", "speed", "velocity", u.si_unit("speed"), finite("velocity")),
        ("Dilution", "element", "dilution", "dilution", _UNITLESS, finite("dilution")),
        ("X-pos", "element", "x_displacement", "x", _FEET, to(_FEET, "x")),
        ("Y-pos", "element", "y_displacement", "y", _FEET, to(_FEET, "y")),
        ("Iso diameter", "model", "iso_diameter", "iso_diameter", d["diameter"], to(d["diameter"], "iso_diameter")),
    ]


def _scaled(values: Sequence[float], factor: float, minus: float = 0.0) -> list:
    """`value * factor - minus` of each value, None where that is not finite."""
    shown = [value * factor - minus for value in values] if minus else [value * factor for value in values]
    if math.isfinite(sum(shown)):       # a finite sum: every value is finite
        return shown
    return [_finite(value) for value in shown]


def _finite_values(values: Sequence[Any]) -> list:
    """`_finite` of each value; the values themselves when all are finite numbers."""
    try:
        if math.isfinite(sum(values)):
            return list(values)
    except TypeError:       # a value that is not a number: kept as it is, as `_finite` keeps it
        pass
    return [_finite(value) for value in values]


def _rows(output: "CaseOutput") -> list[dict[str, float]]:
    return [{name: values[i] for name, values in output.columns.items()} for i in range(len(output.steps))]


def case_memos(output: "CaseOutput") -> list[str]:
    return list(output.memos) + ([output.error] if output.error else [])


def plume_values(result: "Result", columns: "JoinedColumns | None" = None
                 ) -> tuple[list[dict[str, Any]], list[list[list]]]:
    """The §5.3 plume headers and, per case, the shown values of its rows. Converted a column at a time over
    the rows of all cases joined (one pass per column, not one per column and case); `columns`: the joined
    columns of the result's outputs if the caller has them."""
    spec = _plume_spec(result.case)
    headers = [_header(name, label, unit, regime) for label, regime, name, _, unit, _ in spec]
    joined = JoinedColumns(result.outputs) if columns is None else columns
    rows = list(map(list, zip(*(shown(joined) for *_, shown in spec))))
    per_case, start = [], 0
    for output in result.outputs:
        per_case.append(rows[start:start + len(output.steps)])
        start += len(output.steps)
    return headers, per_case


def plume_block(result: "Result", columns: "JoinedColumns | None" = None) -> dict[str, Any]:
    headers, values = plume_values(result, columns)
    outputs = [[{"step": int(step), "values": shown, "status": status}
                for step, status, shown in zip(output.steps, output.statuses, rows)]
               for output, rows in zip(result.outputs, values)]
    return {"headers": headers, "outputs": outputs, "memos": [case_memos(o) for o in result.outputs],
            "postmemos": [list(o.postmemos) for o in result.outputs]}


_DIFFUSIVITY_LABEL = {"CONSTANT": "Eddy diffusivity", "POWER_4_3": "4/3 eddy diffusivity"}


def _farfield_spec(result: "Result") -> list[tuple[str, str, str, str, "u.Unit"]]:
    """§5.3 far-field columns: (label, regime, name, engine column, unit)."""
    d, a = result.case.diffuser_units, result.case.ambient_units
    settings = result.engine_cases[0].settings
    return [
        ("Time", "model", "run_time", "time", _HOURS),
        ("Current speed", "ambient", "ff_velocity", "ff_velocity", a["ff_velocity"]),
        ("Current direction", "ambient", "ff_dir", "ff_dir", a["ff_dir"]),
        ("Width", "model", "adj_width", "width", _METRES),
        ("Distance", "element", "total_surf_dsp", "distance", _METRES),
        ("Background concentration", "ambient", "bg_conc", "background", a["bg_conc"]),   # the library's unit
        ("Concentration", "element", "concentration", "concentration", d["concentration"]),
        ("Dilution", "element", "dilution", "dilution", _UNITLESS),
        ("Decay rate", "ambient", "kt", "decay_rate", u.si_unit("decay_rate")),
        ("Dispersion", "ambient", "ff_diff_coeff", "ff_diff_coeff", u.si_unit("diffusivity")),
        (_DIFFUSIVITY_LABEL.get(settings.farfield_diffusivity, "Eddy diffusivity"), "model", "diffusivity",
         "diffusivity_argument", _UNITLESS),
    ]


def _farfield_ran(result: "Result") -> bool:
    return any(o.was_run for o in result.farfield_outputs)


def farfield_block(result: "Result") -> dict[str, Any]:
    if not _farfield_ran(result):
        return {"was_run": False, "headers": [], "outputs": [], "memos": []}
    spec = _farfield_spec(result)
    outputs = []
    for farfield in result.farfield_outputs:
        rows = []
        for i, step in enumerate(farfield.steps):
            values = [_convert(farfield.columns[column][i], unit) for _, _, _, column, unit in spec]
            rows.append({"step": int(step), "values": values})
        outputs.append(rows)
    return {"was_run": True, "headers": [_header(n, label, unit, regime) for label, regime, n, _, unit in spec],
            "outputs": outputs, "memos": [list(o.memos) for o in result.farfield_outputs]}


def timeseries_memos(result: "Result") -> list[list[str]]:
    """Per case `["Timeseries indices: i, j, …"]` (§3.3), or [] without time series."""
    case = result.case
    if not case.series_info():
        return [[] for _ in result.outputs]
    return [[f"Timeseries indices: {', '.join(str(r) for r in case.series_rows(i))}"]
            for i in range(result.case_count)]


def parameter_memos(result: "Result") -> list[str]:
    return parameter_block(result.engine_cases[0].settings, result.case.to_dict())


# -- §5.4 graphs ------------------------------------------------------------------------------------

GRAPH_SERIES = ("trajectory", "boundary1", "boundary2", "ambdensity", "density", "path", "out1", "out2", "pathv",
                "dilution", "cldilution", "enddilution", "mzdilution", "concentration", "mzconcentration",
                "custom1", "custom2")
GRAPH_CASE_LIMIT = 5      # model.md §12: the per-step graphs cover the first five cases
_BREAK = [None, None]     # §5.4: a line break between cases


def _axis(unit: "u.Unit", label: str) -> dict[str, Any]:
    return {**_unit_fields(unit), "axis_label": label}


def _point(x: "float | None", y: "float | None") -> list[Any]:
    return [_finite(x), _finite(y)]


def _graphs(result: "Result", ambient: Mapping[str, Any]) -> dict[str, Any]:
    """The 17 graph series of §5.4 (built by the project; the legacy library's graph code is not specified).

    Per-step series (first GRAPH_CASE_LIMIT cases, [null, null] between cases), all in the case's units:
    trajectory = (horizontal distance from the origin, depth) of the centre line; boundary1 / boundary2 =
    the upper / lower plume boundary in that vertical plane (centre ± half the isopleth diameter, normal to
    the path); ambdensity = the ambient layers (sigmaT, depth); density = plume density (sigmaT, depth);
    path = centre line (x, y); out1 / out2 = left / right plume edge in plan (± half the isopleth diameter
    normal to the horizontal direction); pathv = the ambient current at the port, drawn from the source over
    the plume's horizontal reach; dilution / cldilution = average / centre-line dilution against the
    horizontal distance from the source. Per-case series (every case, x = case number): enddilution /
    concentration = dilution / concentration of the last near-field row; mzdilution / mzconcentration = the
    same at the row that reached the mixing zone ("MZ dis"), null when it was not reached. custom1/2: empty.
    """
    case = result.case
    x_unit, z_unit = case.diffuser_units["offset_x"], case.ambient_units["z"]
    conc_unit = case.diffuser_units["concentration"]
    series: dict[str, list] = {name: [] for name in GRAPH_SERIES}

    def x(value: float) -> "float | None":
        return _convert(value, x_unit)

    def z(value: float) -> "float | None":
        return _convert(value, z_unit)

    shown = list(zip(result.outputs, result.engine_cases))[:GRAPH_CASE_LIMIT]
    for index, (output, engine_case) in enumerate(shown):
        if index:
            for name in GRAPH_SERIES[:11]:
                series[name].append(list(_BREAK))
        source_x, source_y = engine_case.diffuser.offset_x, engine_case.diffuser.offset_y
        reach = 0.0
        for row in _rows(output):
            radius = row["iso_diameter"] / 2.0
            distance = math.hypot(row["x"], row["y"])
            theta = math.radians(row["vertical_angle"])
            phi = math.radians(row["horizontal_angle"])
            series["trajectory"].append(_point(x(distance), z(row["depth"])))
            series["boundary1"].append(_point(x(distance - radius * math.sin(theta)),
                                              z(row["depth"] - radius * math.cos(theta))))
            series["boundary2"].append(_point(x(distance + radius * math.sin(theta)),
                                              z(row["depth"] + radius * math.cos(theta))))
            series["density"].append(_point(row["density"] - 1000.0, z(row["depth"])))
            series["path"].append(_point(x(row["x"]), x(row["y"])))
            series["out1"].append(_point(x(row["x"] - radius * math.sin(phi)), x(row["y"] + radius * math.cos(phi))))
            series["out2"].append(_point(x(row["x"] + radius * math.sin(phi)), x(row["y"] - radius * math.cos(phi))))
            # legacy-http-api.md: the dilution graphs are against the distance from the source
            series["dilution"].append(_point(x(row["source_distance"]), row["dilution"]))
            series["cldilution"].append(_point(x(row["source_distance"]), row["cl_dilution"]))
            if math.isfinite(row["source_distance"]):
                reach = max(reach, row["source_distance"])
        series["ambdensity"] += [_point(level[-1], level[0]) for level in ambient["outputs"][index]]
        direction = output.columns["ambient_current_dir"][0] if output.steps else 0.0
        reach = reach or engine_case.diffuser.diameter
        if math.isfinite(direction):
            heading = math.radians(direction)
            series["pathv"] += [_point(x(source_x), x(source_y)),
                                _point(x(source_x + reach * math.cos(heading)),
                                       x(source_y + reach * math.sin(heading)))]
    for number, output in enumerate(result.outputs, start=1):
        count = len(output.steps)
        last = count - 1 if count else None
        at_mz = (next((i for i, status in zip(range(count), output.statuses) if "MZ dis" in status), None)
                 if "MZ dis" in "\0".join(output.statuses) else None)
        dilution, concentration = output.columns["dilution"], output.columns["concentration"]
        series["enddilution"].append([number, _finite(dilution[last]) if last is not None else None])
        series["concentration"].append([number, _convert(concentration[last], conc_unit)
                                        if last is not None else None])
        series["mzdilution"].append([number, _finite(dilution[at_mz]) if at_mz is not None else None])
        series["mzconcentration"].append([number, _convert(concentration[at_mz], conc_unit)
                                          if at_mz is not None else None])

    distance_origin, depth = _axis(x_unit, "Distance from Origin"), _axis(z_unit, "Depth")
    plan_x, plan_y = _axis(x_unit, "West-East"), _axis(x_unit, "South-North")
    from_source, dilution = _axis(x_unit, "Distance from Source"), _axis(_UNITLESS, "Dilution")
    sequence, concentration = _axis(_UNITLESS, "Case sequence"), _axis(conc_unit, "Concentration")
    density_axis = _axis(_SIGMA_T, "Density")
    axes = {
        "trajectory": (distance_origin, depth), "boundary1": (distance_origin, depth),
        "boundary2": (distance_origin, depth), "ambdensity": (density_axis, depth), "density": (density_axis, depth),
        "path": (plan_x, plan_y), "out1": (plan_x, plan_y), "out2": (plan_x, plan_y), "pathv": (plan_x, plan_y),
        "dilution": (from_source, dilution), "cldilution": (from_source, dilution),
        "enddilution": (sequence, dilution), "mzdilution": (sequence, dilution),
        "concentration": (sequence, concentration), "mzconcentration": (sequence, concentration),
        "custom1": (None, None), "custom2": (None, None),
    }
    return {name: {"coords": series[name], "units": {"x": axes[name][0], "y": axes[name][1]}}
            for name in GRAPH_SERIES}


# -- §5.1 / §5.2 the body ------------------------------------------------------------------------------

def success_object(result: "Result", run_id: str) -> dict[str, Any]:
    """The decoded result object of §5.2 (keys in the legacy order), JSON-safe: NaN / infinities -> None."""
    from ..results import json_safe

    return json_safe(_success_fields(result, run_id))


def _success_fields(result: "Result", run_id: str) -> dict[str, Any]:
    """`success_object` before it is made JSON-safe (most of it already is: the plume values)."""
    case = result.case
    casetime: list[Any] = [0] if case.timeseries is None else [float(t) for t in result.case_times]   # §3.3
    farfield = farfield_block(result)
    ambient = ambient_block(result)
    columns = JoinedColumns(result.outputs)       # the plume block and the text report read the same columns
    return {
        "success": True,
        "error": None,
        "errortraceback": None,
        "cases": result.case_count,
        "casetime": casetime,
        "modelparams": {"memos": parameter_memos(result)},
        "timeseries": {"memos": timeseries_memos(result)},
        "diffuser": diffuser_block(result),
        "ambient": ambient,
        "plume": plume_block(result, columns),
        "farfield": farfield,
        "tpb": {"was_run": bool(result.tidal.was_run), "memos": list(result.tidal.memos)},
        "graphs": _graphs(result, ambient),
        "text_outputs": text_report(result, columns),
        "output_id": run_id,                      # Q7: the run's string id
    }


def success_body(result: "Result", run_id: str) -> str:
    """The success body of §5.1: a JSON string literal holding the JSON text of `success_object` (Q4).

    The inner text uses Python's defaults (", " / ": " separators, ASCII escapes) like the legacy back end;
    non-finite numbers are null (Q4 recommendation), so the front end's NaN repair finds nothing to do."""
    with cyclic_gc_paused():      # hundreds of thousands of small lists, no cycles
        fields = _success_fields(result, run_id)
        # built here without cycles: no circular-reference bookkeeping for its hundreds of thousands of rows
        try:        # usually JSON-safe already: then no copy of the whole object through json_safe
            inner = json.dumps(fields, allow_nan=False, check_circular=False)
        except (ValueError, TypeError):
            from ..results import json_safe

            inner = json.dumps(json_safe(fields), allow_nan=False, check_circular=False)
        return json.dumps(inner)

