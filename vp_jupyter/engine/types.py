"""The engine's own input and output types, all in SI (spec §0).

The case layer (`vp_jupyter.inputs`) translates user input into these; the results layer turns
`CaseOutput` into tables. Nothing here knows about units strings, files or pandas.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# spec §0: the "never merges" sentinel used as the spacing of a single port
MISSING = 214159264.0
MAX_STEPS = 2000            # spec §0: near-field steps
MAX_FF_STEPS = 10000        # spec §10.3: far-field time steps
MAX_FF_ROWS = 10000         # far-field rows written per case; beyond it a memo (a tiny output increment)

AMBIENT_VARIABLES = (
    "current_speed", "current_dir", "salinity", "temperature", "bg_conc",
    "decay_rate", "ff_velocity", "ff_dir", "ff_diff_coeff",
)
EXTRAPOLATION_MODES = ("CONSTANT", "LINEAR_TO_ZERO", "EXTRAPOLATED")
ISOPLETH_TYPES = ("concentration", "salinity", "temperature", "speed")
MAX_REVERSALS = ("INITIAL_TRAP_LEVEL", "MAX_RISE_OR_FALL", "SECOND_TRAP_LEVEL", "SECOND_MAX_RISE_OR_FALL")
SIMILARITY_PROFILES = ("DEFAULT", "POWER_3_2", "GAUSSIAN")
BACTERIA_MODELS = ("COLIFORM_MANCINI", "COLIFORM_301H", "ENTEROCCOUS_301H")
FARFIELD_DIFFUSIVITIES = ("CONSTANT", "POWER_4_3")


@dataclass(frozen=True)
class Settings:
    """Model parameters of spec §1.1 (SI; enums as their member names)."""
    current_vector_averaging: bool = False
    allow_induced_current: bool = False
    report_effective_dillution: bool = False
    tidal_pollution_buildup: bool = False
    tpb_channel_width: float = 1e6          # m (forced to 1e6 unless TPB is on: the case layer does that)
    tpb_segment_length: float = 50.0        # m
    tpb_upstream_dir: float = 90.0          # deg
    tpb_coast_bin: int = 0
    tpb_coast_concentration: float = 0.0    # kg/kg
    tpb_mixing_zone_ceil: float = 0.0       # m
    brooks_far_field: bool = False
    ff_increment: float = 100.0             # m
    estimate_ff_background: bool = False
    output_all_ff_increments: bool = False
    farfield_diffusivity: str = "CONSTANT"
    contraction_coeff: float = 1.0
    light_absorb_coeff: float = 0.16
    aspiration_coeff: float = 0.1
    bacteria_model: str = "COLIFORM_MANCINI"
    at_equilibrium: bool = True             # True: S,T equation of state; False: p,S,T (UNESCO EOS-80)
    similarity_profile: str = "DEFAULT"
    max_reversals: str = "SECOND_MAX_RISE_OR_FALL"
    stop_on_bottom_hit: bool = False
    dont_stop_on_surface_hit: bool = False
    max_dilution: float = 10000.0
    write_step_freq: float = 100.0
    elevation_proj_plane: float = 0.0       # deg
    use_shore_vector: bool = False
    dist_to_shore: float = 7250.0           # m
    dir_to_shore: float = 58.0              # deg


@dataclass(frozen=True)
class Diffuser:
    """One port group (spec §1.2), SI: m, deg (maths convention, wrapped to [0, 360)), m³/s total, psu, °C, kg/kg."""
    diameter: float
    depth: float
    effluent_flow: float
    vertical_angle: float = 0.0
    horizontal_angle: float = 0.0
    num_ports: int = 1
    port_spacing: float = 0.0
    offset_x: float = 0.0
    offset_y: float = 0.0
    acute_mixing_zone: float = 0.0
    isopleth_type: str = "concentration"
    isopleth: float = 0.0                   # SI value of the quantity named by isopleth_type
    salinity: float = 0.0
    temperature: float = 0.0
    concentration: float = 0.0


@dataclass(frozen=True)
class VariableProfile:
    """One ambient variable as points (depth m, SI value), depth increasing, already filled (spec §5.2).

    Most variables share the layer depths; a time-series variable has its own depth list (spec §12).
    `surface` / `bottom` are the extrapolation modes of spec §5.3.
    """
    depths: tuple[float, ...]
    values: tuple[float, ...]
    surface: str = "CONSTANT"
    bottom: str = "CONSTANT"


@dataclass(frozen=True)
class Ambient:
    """The ambient water column (spec §5): one profile per variable of AMBIENT_VARIABLES, bottom depth H (m).

    decay_is_light: decay_rate values are surface solar radiation in ly/hr and the rate comes from the
    bacteria model (spec §3); otherwise they are first-order rates in s⁻¹.
    """
    profiles: dict[str, VariableProfile]
    bottom_depth: float
    decay_is_light: bool = False


@dataclass(frozen=True)
class EngineCase:
    """Everything one UM3 run needs. `buildup` is the tidal-buildup concentration fed in (spec §11)."""
    settings: Settings
    diffuser: Diffuser
    ambient: Ambient
    buildup: float = 0.0


# Plume output columns (engine name -> SI unit), in order. spec §9.1 / reference README "Plume columns".
PLUME_COLUMNS: dict[str, str] = {
    "depth": "m",
    "diameter": "m",
    "ambient_current_speed": "m/s",
    "velocity": "m/s",
    "x": "m",
    "y": "m",
    "density": "kg/m3",
    "concentration": "kg/kg",
    "dilution": "1",
    "vertical_angle": "deg",
    "horizontal_angle": "deg",
    "time": "s",
    "cl_dilution": "1",
    "net_dilution": "1",
    "salinity": "psu",
    "temperature": "degC",
    "height": "m",
    "mass": "kg",
    "entrained_mass": "kg",
    "horizontal_distance": "m",
    "source_distance": "m",
    "path_length": "m",
    "iso_diameter": "m",
    "isopleth_factor": "1",
    "density_difference": "kg/m3",
    "pollutant_mass": "kg",
    "ambient_density": "kg/m3",
    "ambient_salinity": "psu",
    "ambient_temperature": "degC",
    "ambient_bg_conc": "kg/kg",
    "ambient_decay_rate": "1/s",
    "ambient_current_dir": "deg",
    "buildup": "kg/kg",
}


@dataclass
class FinalState:
    """The element and ambient at the end of the near field: the start of the far field and tidal buildup."""
    x: float
    y: float
    z: float
    vx: float
    vy: float
    vz: float
    diameter: float
    mass: float
    initial_mass: float
    pollutant_mass: float
    initial_pollutant_mass: float
    dilution: float
    concentration: float
    density: float
    effluent_density: float
    isopleth_factor: float
    total_time: float
    reached_mixing_zone: bool
    ambient: dict[str, float]               # SI values at the lagged final depth (+ "current_speed" scalar)
    initial_velocity: tuple[float, float, float]


@dataclass
class CaseOutput:
    """One UM3 run: written rows (columnar, SI), status texts, memos, final state."""
    steps: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    columns: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in PLUME_COLUMNS})
    memos: list[str] = field(default_factory=list)
    postmemos: list[str] = field(default_factory=list)
    final: FinalState | None = None
    stop_reason: str = ""                   # why the near field ended, e.g. "surface", "trap level", "max steps"
    error: str | None = None                # a model-level refusal (memo, no run), e.g. concentration <= 0


# Far-field output columns (engine name -> SI unit), in order. spec §10.5
FARFIELD_COLUMNS: dict[str, str] = {
    "distance": "m",
    "time": "s",
    "dilution": "1",
    "concentration": "kg/kg",
    "width": "m",
    "x": "m",
    "y": "m",
    "ff_velocity": "m/s",
    "ff_dir": "deg",
    "background": "kg/kg",
    "decay_rate": "1/s",
    "ff_diff_coeff": "m0.67/s2",
    "diffusivity_argument": "1",
}


@dataclass
class FarFieldOutput:
    """One Brooks far-field run (spec §10): rows (columnar, SI), the step of each row, memos."""
    was_run: bool = False
    steps: list[int] = field(default_factory=list)
    columns: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in FARFIELD_COLUMNS})
    memos: list[str] = field(default_factory=list)


@dataclass
class TidalOutput:
    """Tidal pollution buildup over a series of cases (spec §11)."""
    was_run: bool = False
    buildup: list[float] = field(default_factory=list)    # concentration fed into each case (kg/kg)
    highest: float = 0.0
    memos: list[str] = field(default_factory=list)
