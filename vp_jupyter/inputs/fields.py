"""The one table of input fields (spec §1, reference README "Case schema") and the JSON Schema made from it.

Every model parameter, diffuser value, ambient layer variable and time-series setting is a `FieldSpec` here.
Validation (`validate.py`), the part classes (`parts.py`), `json_schema()` and, later, the legacy HTTP parser
and the notebook forms all read these tables, so a new field is added once.

Bounds (`minimum`, `exclusive_minimum`, …) are in the SI unit of the field's kind and are checked after unit
conversion; conditional rules (port spacing with several ports, TPB coast bin, …) live in `normalise.py` and
`build.py`. Every numeric field has a physically meaningful range (the constants below), wide enough for any
real outfall and narrow enough that the model stays finite for every accepted value. A value that meets an
inclusive bound to the precision it was written with (1.5708 rad for 90°) is accepted as the bound itself.
`LIMITS` lists these ranges and the engine's own bounds on work (steps, far-field rows, ambient layers).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from .. import units as u
from ..engine import types as et


PRECISE_DIGITS = 3     # significant digits from which a value is read as rounded (FieldSpec.settle)


@dataclass(frozen=True)
class FieldSpec:
    """One input field.

    type: "float", "int", "bool", "enum" or "str". kind: the unit kind of the value (`units.KINDS`).
    default: the value used when the field is missing (in the SI unit); None = no default (`required`, or
    for ambient variables "filled from the other layers", spec §5.2). units: the unit labels allowed when
    they are fewer than all units of the kind. timeseries: the value may come from a time series (spec §12).
    legacy_key: the key of the legacy request (legacy-http-api §2) where there is a one-to-one key.
    """
    name: str
    section: str
    label: str
    kind: str = "unitless"
    type: str = "float"
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    choices: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    timeseries: bool = False
    legacy_key: str | None = None
    note: str = ""
    description: str = ""
    # (unit rule, minimum, maximum, unit label) for units whose SI value is another quantity (ly/hr decay:
    # the solar radiation itself)
    rule_bounds: tuple[tuple[str, float, float, str], ...] = ()
    bounds_unit: str = ""       # the unit of the bounds when it is not the kind's SI unit

    @property
    def default_unit(self) -> str:
        """Label of the SI unit of the field's kind (the unit assumed when none is given)."""
        return u.si_unit(self.kind).label

    @property
    def allowed_units(self) -> tuple[str, ...]:
        return self.units or tuple(u.unit_labels(self.kind))

    def bounds_text(self, value: "float | None" = None) -> str:
        """The bounds as a phrase, e.g. 'must be > 0' or 'must be between -2 and 100 °C'. For a `value` (SI)
        at or below an exclusive minimum (0 where zero is meaningless) only that bound is named."""
        if value is not None and self.exclusive_minimum is not None and value <= self.exclusive_minimum:
            return f"must be > {self.exclusive_minimum:g}"
        low = self.minimum if self.minimum is not None else self.exclusive_minimum
        high = self.maximum if self.maximum is not None else self.exclusive_maximum
        unit = "" if self.kind in ("unitless", "isopleth") or not (low or high) else " " + (self.bounds_unit
                                                                                          or self.default_unit)
        if low is not None and high is not None:
            if self.minimum is not None and self.maximum is not None:
                return f"must be between {low:g} and {high:g}{unit}"
            left = ">=" if self.minimum is not None else ">"
            right = "<=" if self.maximum is not None else "<"
            return f"must be {left} {low:g} and {right} {high:g}{unit}"
        if low is not None:
            return f"must be {'>=' if self.minimum is not None else '>'} {low:g}{unit}"
        if high is not None:
            return f"must be {'<=' if self.maximum is not None else '<'} {high:g}{unit}"
        return ""

    def in_bounds(self, value: float) -> bool:
        return not ((self.minimum is not None and value < self.minimum)
                    or (self.maximum is not None and value > self.maximum)
                    or (self.exclusive_minimum is not None and value <= self.exclusive_minimum)
                    or (self.exclusive_maximum is not None and value >= self.exclusive_maximum))

    def for_rule(self, rule: str) -> "FieldSpec":
        """The spec whose bounds apply to a value in a unit of this conversion rule."""
        for name, low, high, unit in self.rule_bounds:
            if name == rule:
                return FieldSpec(name=self.name, section=self.section, label=self.label, kind=self.kind,
                                 type=self.type, minimum=low, maximum=high, note=self.note, bounds_unit=unit)
        return self

    def settle(self, given: float, si: float, to_given_unit: Callable[[float], float]) -> "float | None":
        """`si` (the SI value of `given`) if it is in bounds; the bound itself if `si` breaks an inclusive
        bound that `given` meets to the precision it was written with (1.5708 rad -> 90°, 28.4 °F -> -2 °C);
        else None. `to_given_unit` converts an SI value to the unit `given` is in. A value written with
        fewer than PRECISE_DIGITS significant digits (0, 2, 1.6) is taken as exact."""
        if self.in_bounds(si):
            return si
        for bound, broken in ((self.minimum, self.minimum is not None and si < self.minimum),
                              (self.maximum, self.maximum is not None and si > self.maximum)):
            if broken:
                try:
                    written = Decimal(repr(float(given)))
                    if len(written.normalize().as_tuple().digits) < PRECISE_DIGITS:
                        return None
                    bound_as_given = Decimal(repr(float(to_given_unit(bound))))
                    if bound_as_given.quantize(Decimal(1).scaleb(written.as_tuple().exponent)) == written:
                        return bound
                except (ArithmeticError, ValueError):       # decimal.InvalidOperation is an ArithmeticError
                    return None
        return None


# Physically meaningful ranges (SI) shared by several fields
MAX_DEPTH = 12_000.0                # m: port depth, layer depth, ceiling (deeper than any ocean trench)
MIN_PORT_DEPTH = 0.01               # m
MIN_DIAMETER, MAX_DIAMETER = 1e-4, 20.0    # m: port diameter
MIN_PORT_SPACING = 1e-3             # m: port spacing when there are several ports
MAX_LENGTH = 1e7                    # m: coordinates, spacing, mixing zone, far-field increment, channel
MAX_SPEED = 10.0                    # m/s: ambient and far-field currents (twice the fastest tidal races)
MIN_FLOW, MAX_FLOW = 1e-9, 1e5      # m³/s: total effluent flow
MAX_SALINITY = 300.0                # psu: hypersaline brines
MIN_TEMPERATURE, MAX_TEMPERATURE = -2.0, 100.0     # °C
MAX_CONCENTRATION = 1e12            # kg/kg (col/dl counts are not scaled, so they need room)
MAX_DECAY_RATE = 0.01               # s⁻¹ = 864 d⁻¹ (T90 of 4 minutes)
MAX_LIGHT = 1000.0                  # ly/hr: surface solar radiation for the bacteria models (spec §3)
MAX_DIFFUSIVITY = 1.0               # m^(2/3)/s: far-field 4/3-law coefficient (typical 3e-4 … 1e-2)
ANGLE_RANGE = dict(minimum=-360.0, maximum=360.0)    # deg, before wrapping
MAX_PORTS = 10_000
MAX_AMBIENT_LAYERS = 10_000         # layers of the ambient table and levels of an ambient series
MAX_DILUTION = 1e12
# time-series cases (legacy §7: an unbounded end time never finishes); `max_cases=` of Case overrides it
MAX_CASES = 100_000
MAX_TIME = 1e15                     # s: time-series times (keeps the tidal-buildup travel finite)


def _fields(section: str, *specs: tuple) -> dict[str, FieldSpec]:
    out = {}
    for name, label, kwargs in specs:
        out[name] = FieldSpec(name=name, section=section, label=label, **kwargs)
    return out


def _f(name: str, label: str, **kwargs: Any) -> tuple:
    return (name, label, kwargs)


_FLAG = dict(type="bool", default=False)

# spec §1.1 (defaults) and reference README "model"
MODEL_FIELDS: dict[str, FieldSpec] = _fields(
    "model",
    _f("model", "Model", type="enum", default="UM3", choices=("UM3",),
       description="Only UM3 is supported."),
    _f("current_vector_averaging", "Current vector averaging", legacy_key="currentVectorAveraging",
       description="Interpolate the current direction by vector averaging (spec §5.3).", **_FLAG),
    _f("allow_induced_current", "Allow induced current", legacy_key="allowInducedCurrent",
       description="Multiport induced-current term in entrainment (spec §7.1).", **_FLAG),
    _f("report_effective_dillution", "Report effective dilution", legacy_key="reportEffectiveDillution",
       description="Report the effective net dilution (spec §8.2). The name keeps the reference spelling.",
       **_FLAG),
    _f("tidal_pollution_buildup", "Tidal pollution buildup", legacy_key="modelConfigType",
       description="Run the tidal pollution buildup model (spec §11); exclusive with Brooks.", **_FLAG),
    _f("tpb_channel_width", "TPB channel width", kind="length", default=1e6, exclusive_minimum=0.0, minimum=0.1,
       maximum=1e6,
       legacy_key="tidalPollutantBuildup.channel_width",
       description="Channel width; replaced by 1e6 m unless TPB is on (spec §1.1)."),
    _f("tpb_segment_length", "TPB segment length", kind="length", default=50.0, exclusive_minimum=0.0,
       minimum=0.1, maximum=1e5,
       legacy_key="tidalPollutantBuildup.segment_length", description="TPB bin length."),
    _f("tpb_upstream_dir", "TPB upstream direction", kind="angle", default=90.0, **ANGLE_RANGE,
       legacy_key="tidalPollutantBuildup.upstream_dir", description="Channel upstream direction."),
    _f("tpb_coast_bin", "TPB coast bin", type="int", default=0, minimum=0.0, maximum=99.0,
       legacy_key="tidalPollutantBuildup.coast_bin", description="Coast bin; an integer 10..99 when TPB is on."),
    _f("tpb_coast_concentration", "TPB coast concentration", kind="concentration", default=0.0, minimum=0.0,
       maximum=MAX_CONCENTRATION,
       legacy_key="tidalPollutantBuildup.coast_concentration", description="Coast concentration (kg/kg)."),
    _f("tpb_mixing_zone_ceil", "TPB mixing zone depth", kind="length", default=0.0, minimum=0.0, maximum=MAX_DEPTH,
       legacy_key="tidalPollutantBuildup.mixing_zone_ceil",
       description="Mixing zone depth; only produces the 'ceiling' status."),
    _f("brooks_far_field", "Brooks far field", legacy_key="modelConfigType",
       description="Run the Brooks far-field model (spec §10); exclusive with TPB.", **_FLAG),
    _f("ff_increment", "Far-field increment", kind="length", default=100.0, exclusive_minimum=0.0, minimum=1e-6,
       maximum=MAX_LENGTH, legacy_key="farfieldCoeff",
       description=f"Far-field output spacing (at most {et.MAX_FF_ROWS} far-field rows per case are written)."),
    _f("estimate_ff_background", "Estimate far-field background", legacy_key="estimateFarfieldBackground",
       description="Far-field background estimate (spec §10.4).", **_FLAG),
    _f("output_all_ff_increments", "Output all far-field time increments",
       legacy_key="outputAllFarfieldTimeIncrements", description="Write a far-field row every time step too.",
       **_FLAG),
    _f("farfield_diffusivity", "Far-field diffusivity", type="enum", default="CONSTANT",
       choices=et.FARFIELD_DIFFUSIVITIES, legacy_key="farfieldDiffusivity",
       description="Constant eddy diffusivity or the 4/3 power law (spec §10.2)."),
    _f("contraction_coeff", "Port contraction coefficient", default=1.0, exclusive_minimum=0.0, minimum=0.1,
       maximum=1.0,
       legacy_key="diffPortContCoeff", description="Port contraction coefficient (spec §6.1)."),
    _f("light_absorb_coeff", "Light absorption coefficient", default=0.16, exclusive_minimum=0.0, maximum=100.0,
       legacy_key="lightAbsorpCoeff", description="Only used by the light-dependent bacteria rates (spec §3)."),
    _f("aspiration_coeff", "UM3 aspiration coefficient", default=0.1, exclusive_minimum=0.0, minimum=0.001,
       maximum=1.0,
       legacy_key="um3AspCoeff", description="Shear-entrainment coefficient (spec §7.1)."),
    _f("bacteria_model", "Bacteria model", type="enum", default="COLIFORM_MANCINI", choices=et.BACTERIA_MODELS,
       legacy_key="bacterialModelValue", description="Bacteria decay model for ly/hr decay rates (spec §3)."),
    _f("at_equilibrium", "S,T equation of state", type="bool", default=True, legacy_key="eqOfState",
       description="True: S,T equation of state (spec §4.1); false: p,S,T (spec §4.2)."),
    _f("similarity_profile", "Similarity profile", type="enum", default="DEFAULT", choices=et.SIMILARITY_PROFILES,
       legacy_key="similarityProfile", description="Plume profile for the isopleth (spec §8.1)."),
    _f("max_reversals", "Max vertical reversals", type="enum", default="SECOND_MAX_RISE_OR_FALL",
       choices=et.MAX_REVERSALS, legacy_key="maxReverals", description="Stop criterion (spec §6.2, §7.6)."),
    _f("stop_on_bottom_hit", "Stop on bottom hit", legacy_key="stopOnBottomHit", **_FLAG),
    _f("dont_stop_on_surface_hit", "Don't stop on surface hit", legacy_key="dontStopOnSurfaceHit", **_FLAG),
    _f("max_dilution", "Maximum dilution reported", default=10000.0, exclusive_minimum=0.0, maximum=MAX_DILUTION,
       legacy_key="maxDilutionReported", description="Stop when the dilution exceeds this."),
    _f("write_step_freq", "Write step frequency", type="int", default=100, minimum=1.0, maximum=1e6,
       legacy_key="writeStepFreq", description="Write a regular output row every N steps."),
    _f("elevation_proj_plane", "Elevation projection plane", kind="angle", default=0.0, **ANGLE_RANGE,
       description="Graphics only."),
    _f("use_shore_vector", "Use shore vector", legacy_key="useShoreVector", **_FLAG),
    _f("dist_to_shore", "Distance to shore", kind="length", default=7250.0, minimum=0.0, maximum=MAX_LENGTH,
       legacy_key="distToShore"),
    _f("dir_to_shore", "Direction to shore", kind="angle", default=58.0, **ANGLE_RANGE, legacy_key="dirToShore"),
)

# spec §1.2 and reference README "diffuser.values"; a missing value is 0 unless 0 is invalid
DIFFUSER_FIELDS: dict[str, FieldSpec] = _fields(
    "diffuser",
    _f("diameter", "Port diameter", kind="length", required=True, exclusive_minimum=0.0, minimum=MIN_DIAMETER,
       maximum=MAX_DIAMETER,
       legacy_key="port_diameter"),
    _f("offset_x", "Source x coordinate", kind="length", default=0.0, minimum=-MAX_LENGTH, maximum=MAX_LENGTH,
       legacy_key="source_x_coord"),
    _f("offset_y", "Source y coordinate", kind="length", default=0.0, minimum=-MAX_LENGTH, maximum=MAX_LENGTH,
       legacy_key="source_y_coord"),
    _f("vertical_angle", "Vertical angle", kind="angle", default=0.0, minimum=-90.0, maximum=90.0,
       units=("deg", "rad"), legacy_key="vertical_angle", description="Elevation above horizontal."),
    _f("horizontal_angle", "Horizontal angle", kind="angle", default=0.0, **ANGLE_RANGE, legacy_key="horizontal_angle",
       description="Counter-clockwise from east (deg/rad) or compass bearing (s-deg/s-rad)."),
    _f("num_ports", "Number of ports", type="int", default=1, minimum=1.0, maximum=MAX_PORTS, legacy_key="num_of_ports"),
    _f("port_spacing", "Port spacing", kind="length", default=0.0, minimum=0.0, maximum=1000.0,
       legacy_key="port_spacing",
       description="Needed (at least 1 mm) when there is more than one port."),
    _f("acute_mixing_zone", "Acute mixing zone distance", kind="length", default=0.0, minimum=0.0,
       maximum=MAX_LENGTH, legacy_key="mix_zone_distance", description="0 means no mixing-zone stop (spec §13 item 12)."),
    _f("isopleth", "Isopleth value", kind="isopleth", default=0.0, legacy_key="isopleth_val",
       description="In the units of the quantity named by the isopleth type (units.isopleth): the effluent "
                   "concentration, salinity or temperature, or the ambient current speed."),
    _f("depth", "Port depth", kind="length", required=True, exclusive_minimum=0.0, minimum=MIN_PORT_DEPTH,
       maximum=MAX_DEPTH,
       timeseries=True, legacy_key="port_depth"),
    _f("effluent_flow", "Effluent flow", kind="flow", required=True, exclusive_minimum=0.0, minimum=MIN_FLOW,
       maximum=MAX_FLOW,
       timeseries=True, legacy_key="effluent_flow", description="Total flow of all ports."),
    _f("salinity", "Effluent salinity", kind="salinity", default=0.0, minimum=0.0, maximum=MAX_SALINITY,
       timeseries=True, legacy_key="effluent_salinity"),
    _f("temperature", "Effluent temperature", kind="temperature", default=0.0, minimum=MIN_TEMPERATURE,
       maximum=MAX_TEMPERATURE, timeseries=True, legacy_key="effluent_temp", note="a sanity range"),
    _f("concentration", "Effluent concentration", kind="concentration", required=True, exclusive_minimum=0.0,
       maximum=MAX_CONCENTRATION, timeseries=True, legacy_key="effluent_conc",
       note="the model refuses to run with a zero or negative concentration, spec §1.2"),
)

# spec §1.3 and reference README "ambient.layers"; missing values are filled by spec §5.2
AMBIENT_FIELDS: dict[str, FieldSpec] = _fields(
    "ambient",
    _f("z", "Depth or height", kind="length", required=True, minimum=0.0, maximum=MAX_DEPTH,
       legacy_key="depth_or_height",
       description="Depth below the surface, or height above the bottom when z_is_depth is false."),
    _f("current_speed", "Current speed", kind="speed", minimum=0.0, maximum=MAX_SPEED, timeseries=True,
       legacy_key="current_speed"),
    _f("current_dir", "Current direction", kind="angle", **ANGLE_RANGE, timeseries=True,
       legacy_key="current_direction"),
    _f("salinity", "Ambient salinity", kind="salinity", minimum=0.0, maximum=MAX_SALINITY, timeseries=True,
       legacy_key="ambient_salinity"),
    _f("temperature", "Ambient temperature", kind="temperature", minimum=MIN_TEMPERATURE, maximum=MAX_TEMPERATURE,
       timeseries=True, legacy_key="ambient_temperature", note="a sanity range"),
    _f("bg_conc", "Background concentration", kind="concentration", minimum=0.0, maximum=MAX_CONCENTRATION,
       timeseries=True, legacy_key="background_concentration", description="0 when no layer gives it."),
    _f("decay_rate", "Pollutant decay rate", kind="decay_rate", minimum=0.0, maximum=MAX_DECAY_RATE,
       timeseries=True, legacy_key="pollution_decay_rate", rule_bounds=(("light", 0.0, MAX_LIGHT, "ly/hr"),),
       description="0 when no layer gives it. In ly/hr: the surface solar radiation (0 to 1000 ly/hr)."),
    _f("ff_velocity", "Far-field current speed", kind="speed", minimum=0.0, maximum=MAX_SPEED, timeseries=True,
       legacy_key="far_field_curr_speed", description="Needed with Brooks; else 0 when no layer gives it."),
    _f("ff_dir", "Far-field current direction", kind="angle", **ANGLE_RANGE, timeseries=True,
       legacy_key="far_field_curr_dir"),
    _f("ff_diff_coeff", "Far-field diffusion coefficient", kind="diffusivity", minimum=0.0, maximum=MAX_DIFFUSIVITY,
       timeseries=True, legacy_key="far_field_diff_coeff"),
)
AMBIENT_VARIABLES = et.AMBIENT_VARIABLES
assert tuple(AMBIENT_FIELDS)[1:] == AMBIENT_VARIABLES

# The bounds on the work one case can take (README "Limits"): the input layer enforces the first two with an
# error, the engine stops at the others with a memo (steps: the "max iterations" status of spec §7.6).
LIMITS: dict[str, int] = {
    "ambient_layers": MAX_AMBIENT_LAYERS,     # layers of the ambient table, levels of an ambient series
    "cases": MAX_CASES,
    "near_field_steps": et.MAX_STEPS,
    "far_field_steps": et.MAX_FF_STEPS,
    "far_field_rows": et.MAX_FF_ROWS,
}

# reference README "timeseries" (spec §12)
TIMESERIES_FIELDS: dict[str, FieldSpec] = _fields(
    "timeseries",
    _f("start_time", "Start time", kind="time", default=0.0, minimum=0.0, maximum=MAX_TIME, legacy_key="start_time"),
    _f("end_time", "End time", kind="time", required=True, minimum=0.0, maximum=MAX_TIME, legacy_key="end_time"),
    _f("time_increment", "Time increment", kind="time", required=True, exclusive_minimum=0.0, maximum=MAX_TIME,
       legacy_key="time_increment"),
)
SERIES_FIELDS: dict[str, FieldSpec] = _fields(
    "series",
    _f("csv", "CSV data", type="str",
       description="Diffuser: one value per line (first column). Ambient: first line the depths (or heights) "
                   "of the columns, then one line of values per row. Give exactly one of csv and file."),
    _f("file", "CSV file", type="str",
       description="Path of a .csv file with the same layout as csv; a relative path is relative to the "
                   "folder of the case file (or the current directory for a case not loaded from a file)."),
    _f("increment_hours", "Hours per row", required=True, exclusive_minimum=0.0, legacy_key="increment",
       description="Row used at case time t: floor(t / increment) modulo the number of rows (spec §12)."),
    _f("z_is_depth", "Levels are depths", type="bool", legacy_key="depth_or_height",
       description="Ambient series only; default: the ambient z_is_depth."),
)
OUTPUT_FIELDS: dict[str, FieldSpec] = _fields(
    "output",
    _f("extra_columns", "Extra SI columns", type="bool", default=True),
    _f("include_graphs", "Include graphs", type="bool", default=False),
)
EXTRAPOLATION_MODES = et.EXTRAPOLATION_MODES
DIFFUSER_SERIES = tuple(n for n, f in DIFFUSER_FIELDS.items() if f.timeseries)
AMBIENT_SERIES = tuple(n for n, f in AMBIENT_FIELDS.items() if f.timeseries)


# ---------------------------------------------------------------------------------------------- JSON Schema

def _value_schema(spec: FieldSpec) -> dict[str, Any]:
    schema: dict[str, Any] = {"title": spec.label}
    if spec.type == "bool":
        schema["type"] = "boolean"
    elif spec.type == "enum":
        schema["type"] = "string"
        schema["enum"] = list(spec.choices)
    elif spec.type == "str":
        schema["type"] = "string"
    else:
        schema["type"] = ["integer", "null"] if spec.type == "int" else ["number", "null"]
        # a bound holds in every unit only when it is 0 of a zero-preserving kind or the kind has one unit
        unit_free = spec.kind in ("unitless", "diffusivity") or spec.section == "model"
        for key in ("minimum", "maximum", "exclusive_minimum", "exclusive_maximum"):
            bound = getattr(spec, key)
            if bound is not None and (unit_free or (bound == 0 and spec.kind not in ("temperature", "salinity"))):
                schema[{"exclusive_minimum": "exclusiveMinimum",
                        "exclusive_maximum": "exclusiveMaximum"}.get(key, key)] = bound
    if spec.default is not None:
        schema["default"] = spec.default
    text = spec.description
    if spec.kind not in ("unitless", "isopleth") and spec.section != "series":
        text = (text + " " if text else "") + f"Default unit: {spec.default_unit}."
    if spec.required:
        text = (text + " " if text else "") + "Required."
    if text:
        schema["description"] = text
    return schema


def _unit_schema(spec: FieldSpec) -> dict[str, Any]:
    kind_word = "isopleth type" if spec.kind == "isopleth" else f"{spec.kind.replace('_', ' ')} unit"
    return {"type": "string", "examples": list(spec.allowed_units),
            "description": f"{spec.label}: {kind_word}, matched case-insensitively against the label, the "
                           "constant name or an alias (see the units vocabulary)."}


def _object(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    schema = {"type": "object", "additionalProperties": False, "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the case format, generated from the field tables.

    The loader is a little more lenient than the schema (numeric strings, case-insensitive enum names and
    unit strings); every document the schema accepts has the right shape for `Case.load`.
    """
    model = _object({n: _value_schema(f) for n, f in MODEL_FIELDS.items()})
    diffuser = _object({
        "values": _object({n: _value_schema(f) for n, f in DIFFUSER_FIELDS.items()}),
        "units": _object({n: _unit_schema(f) for n, f in DIFFUSER_FIELDS.items() if f.kind != "unitless"}
                         | {"num_ports": {"type": "string"}}),
    }, required=("values",))
    layer = _object({n: _value_schema(f) for n, f in AMBIENT_FIELDS.items()}, required=("z",))
    mode = {"type": "string", "enum": list(EXTRAPOLATION_MODES), "default": "CONSTANT"}
    ambient = _object({
        "units": _object({n: _unit_schema(f) for n, f in AMBIENT_FIELDS.items()}),
        "z_is_depth": {"type": "boolean", "default": True,
                       "description": "false: z is the height above the bottom (layers from the highest down)."},
        "extrapolation": _object({v: _object({"surface": mode, "bottom": mode}) for v in AMBIENT_VARIABLES}),
        "layers": {"type": "array", "minItems": 2, "items": layer,
                   "description": "Ordered from the surface down."},
    }, required=("layers",))
    series_base = {n: _value_schema(f) for n, f in SERIES_FIELDS.items() if n != "z_is_depth"}
    row = {"type": "array", "items": {"type": "number"}}
    series_base["csv"] = {**series_base["csv"], "type": ["string", "array"],
                          "items": {"anyOf": [{"type": "number"}, row]}}    # rows as lists: normalised to text
    one_source = {"oneOf": [{"required": ["csv"]}, {"required": ["file"]}]}
    diffuser_series = {v: _object(series_base | {"units": _unit_schema(DIFFUSER_FIELDS[v])},
                                  required=("increment_hours",), **one_source) for v in DIFFUSER_SERIES}
    ambient_series = {v: _object(series_base | {"units": _unit_schema(AMBIENT_FIELDS[v]),
                                                "depth_units": _unit_schema(AMBIENT_FIELDS["z"]),
                                                "z_is_depth": _value_schema(SERIES_FIELDS["z_is_depth"])},
                                 required=("increment_hours",), **one_source) for v in AMBIENT_SERIES}
    time_unit = _unit_schema(TIMESERIES_FIELDS["start_time"])
    timeseries = _object(
        {n: _value_schema(f) for n, f in TIMESERIES_FIELDS.items()}
        | {"units": time_unit, "start_units": time_unit, "end_units": time_unit, "increment_units": time_unit,
           "diffuser": _object(diffuser_series), "ambient": _object(ambient_series)},
        required=("end_time", "time_increment"))
    output = _object({n: _value_schema(f) for n, f in OUTPUT_FIELDS.items()})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "vp-jupyter case",
        **_object({
            "name": {"type": "string"}, "description": {"type": "string"},
            "source": {"type": "object", "description": "Informational."},
            "model": model, "diffuser": diffuser, "ambient": ambient,
            "timeseries": {"oneOf": [timeseries, {"type": "null"}]}, "output": output,
        }, required=("diffuser", "ambient")),
    }
