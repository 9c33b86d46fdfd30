"""THE input definition of vp-jupyter: every field (label, unit kind, default unit, limits, default) in one
table, the case parts, `Case` (validated, normalised, with its SI engine cases) and `CaseError`.

Modules: `fields` (the field tables and `json_schema()`), `parts` (part classes, `CaseError`, the case JSON
layout), `normalise` (parsing of raw values), `build` (SI conversion, range checks, spec §5.1/§5.2/§12),
`case` (`Case`).

Validation decisions (each is tested in tests/test_inputs.py):
* Missing diffuser values are 0 (num_ports 1) except diameter, depth, effluent_flow and concentration, which are
  required (0 is invalid for them) unless a time series gives them. Missing units are SI.
* Port depth must be > 0. With z as depth, a port deeper than the deepest layer is allowed and simply sets the
  bottom depth H (spec §5.1). With z as height, the port is at the bottom by definition (H = port depth unless a
  series raises it), so a layer height above H (above the water surface) is an error.
* Concentration must be > 0 (the model refuses a zero concentration, spec §1.2). Every numeric field has a
  physically meaningful range, defined once in `fields.py` (e.g. port diameter 0.1 mm–20 m, depths up to
  12 000 m, currents up to 10 m/s, salinity 0–300 psu, temperature -2..100 °C, decay up to 0.01 s⁻¹, angles
  -360..360°, the vertical angle -90..90°), checked after unit conversion, so that the model stays finite for
  every accepted value. A value that meets an inclusive bound to the precision it was written with (1.5708
  rad for 90°, 28.4 °F for -2 °C; at least 3 significant digits) is accepted as the bound. Filled
  (interpolated/extrapolated) layer values are range-checked too. `fields.LIMITS` lists the bounds on work:
  ambient layers (10 000, an error), cases, near-field steps, far-field steps and rows (a memo).
* Ambient layers: at least 2; depths strictly increasing, or heights strictly decreasing (surface first).
  current_speed, current_dir, salinity and temperature need a value in some layer or a time series; bg_conc and
  decay_rate default to 0; ff_velocity, ff_dir and ff_diff_coeff default to 0 unless Brooks is on.
* Unknown keys anywhere, unknown or wrong-kind unit strings, unknown enum names: errors listing what is allowed.
  Any unit string is accepted for num_ports (it is unitless, reference README).
* Model: contraction_coeff in [0.1, 1], aspiration coefficient in [0.001, 1], light absorption coefficient > 0,
  max_dilution > 0, write_step_freq a whole number >= 1, ff_increment >= 1e-6 m, tpb_channel_width and
  tpb_segment_length >= 0.1 m; with TPB on,
  tpb_coast_bin a whole number 10..99; TPB and Brooks are exclusive; with the shore vector, dist_to_shore > 0.
* Time series (spec §12): end >= start >= 0, increment > 0, at most `normalise.MAX_CASES` (100 000) cases unless
  `max_cases=` is given to `Case`, `Case.load` or `Case.from_dict`; per series increment_hours > 0 (fractional
  hours allowed, legacy Q11); a series' own unit replaces the field's unit (legacy §3.6); ambient series levels
  use the series' own depth_units and z_is_depth (project fix, spec §13), need >= 2 levels >= 0, depths
  increasing / heights decreasing without repeats, and one value per level on every row; every value is
  range-checked like the field it feeds, every row (used or not) before any case is built. Every diffuser and
  ambient variable may have a series (project fix, spec §13). A timeseries block without any series gives one
  case at t = 0 (legacy §3.3). tests/test_timeseries.py covers these rules.
* Series data: exactly one of `csv` (CSV text, or a list of numbers / rows, kept as CSV text) and `file` (a CSV
  file read at load time; relative to the case file's folder, or to `base_dir` / the current directory for a
  dict; `to_dict()` keeps the resolved path, `to_dict(inline_files=True)` writes the data as csv;
  `allow_files=False` refuses files, for untrusted input). At least one data row. CSV problems name the file
  (as given) or the series path + ".csv", the line and, for a cell, the column: `flow.csv line 3: must be a
  number (got 'abc') in column 1`; at most `normalise.MAX_CSV_PROBLEMS` per series are listed, then a count.
  A missing or unreadable file: `timeseries.<group>.<var>.file: file not found: /abs/path (got 'flow.csv')`.
* Salinity given as a density or conductivity, T90 and ly/hr decay rates are converted as described in
  `vp_jupyter.units` (spec §13 item 5, fixed).
"""
from .case import Case
from .fields import (AMBIENT_FIELDS, DIFFUSER_FIELDS, LIMITS, MODEL_FIELDS, OUTPUT_FIELDS, SERIES_FIELDS,
                     TIMESERIES_FIELDS, FieldSpec, json_schema)
from .parts import (AmbientLayer, AmbientProfile, AmbientSeries, CaseError, Diffuser, DiffuserSeries,
                    ModelSettings, OutputOptions, Timeseries)

__all__ = [
    "Case", "CaseError", "ModelSettings", "Diffuser", "AmbientProfile", "AmbientLayer", "Timeseries",
    "DiffuserSeries", "AmbientSeries", "OutputOptions", "FieldSpec", "MODEL_FIELDS", "DIFFUSER_FIELDS",
    "AMBIENT_FIELDS", "TIMESERIES_FIELDS", "SERIES_FIELDS", "OUTPUT_FIELDS", "LIMITS", "json_schema",
]
