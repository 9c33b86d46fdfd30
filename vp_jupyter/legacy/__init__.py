"""The legacy Visual Plumes wire format (legacy-http-api.md): the ONLY package that knows it.

`parse_run_request` turns a `run_analysis` request (the `projectData` JSON and the CSV file parts) into a
`Case`; `load_project` does the same for a project file the web UI saved ("Save Project Config");
`success_body`, `error_body`, `health_body` and `archive_bytes` turn a `Result` (or an error) into the
responses and the zip archive the unmodified front end expects. No Tornado, no Jupyter. Field names and
legacy keys come from the field tables of `vp_jupyter.inputs.fields`; this package adds only what is
specific to the wire (value spellings, presence rules, stage messages, output headers).

Modules, one concern each: `wire` (endpoints, content types, CORS, download name), `errors` (stage
messages, `LegacyError`), `translate` (a decoded `projectData` object + its series -> Case, problems in
legacy words), `request` (the multipart request -> `translate`), `project` (a saved project file -> the
`projectData` the UI would send -> `translate`), `response` (Result -> the result object and success body),
`archive` (Result -> the zip).

Project decisions of legacy-http-api.md §8 (they override the legacy behaviour):
* Q1 booleans: the eight flags and `z_is_depth` are true for JSON true or "true", false for false, "false",
  "" or null; anything else is an error naming the field.
* Q3 `farfieldDiffusivity`: "CONSTANT" constant, "POWER_4_3" or "" the 4/3 power law, anything else an error.
* Q4 success body: a JSON string holding the JSON of the result object; NaN and infinities are written as null.
* Q5 units: every string of §2.8 keeps its meaning, kt / N-deg / N-rad are aliases (`vp_jupyter.units`);
  unknown, empty or wrong-category strings are errors naming the field ("" stays valid for num_of_ports).
* Q7 `output_id` is the run id string given by the caller; archive members are named `output_<run id>.…`.
* Q8 archive: the legacy names and formats; case numbers padded to max(2, digits of the case count).
* Q10 ambient `e_sfc` / `e_btm`: constant, extrapolated, linear_to_zero (missing = constant); others an error.
* Q11 time-series increments may be fractional hours (> 0). Q12 a port_depth series works (the Case does it).
* Q13 `text_outputs` is `vp_jupyter.report.text_report` (Appendix A layout), built without `sys.stdout`.
* Q16 errors: the legacy stage message as a prefix, then the field (legacy path), the reason and the value;
  never empty. Q17 malformed requests raise `LegacyError` (the handler answers with the JSON error object).
Where no decision exists the legacy rule is kept: unknown `similarityProfile` means the default profile,
`eqOfState` other than "S_T" means p,S,T, file parts of unknown fields are ignored.
"""
from __future__ import annotations

from .archive import RULE, archive_bytes, archive_members
from .errors import STAGE_MESSAGES, LegacyError, error_body, error_message, request_error
from .project import ProjectFiles, is_project, load_project, project_data, project_series_needed
from .request import MAX_UI_NAME, parse_run_request, ui_run_name
from .response import GRAPH_CASE_LIMIT, GRAPH_SERIES, success_body, success_object
from .wire import (CORS_ALLOW_HEADERS, CORS_ALLOW_METHODS, CORS_MAX_AGE, DOWNLOAD_ZIP_PATH, DOWNLOAD_ZIP_ROUTE,
                   ERROR_CONTENT_TYPE, HEALTH_CONTENT_TYPE, RUN_ANALYSIS_PATH, SUCCESS_CONTENT_TYPE, ZIP_CONTENT_TYPE,
                   archive_filename, content_disposition, cors_headers, health_body, preflight_headers)

__all__ = [
    "LegacyError", "parse_run_request", "request_error", "success_body", "success_object", "error_body",
    "error_message", "health_body", "archive_bytes", "archive_members", "archive_filename", "content_disposition",
    "cors_headers", "preflight_headers", "RUN_ANALYSIS_PATH", "DOWNLOAD_ZIP_PATH", "DOWNLOAD_ZIP_ROUTE",
    "SUCCESS_CONTENT_TYPE", "ERROR_CONTENT_TYPE", "HEALTH_CONTENT_TYPE", "ZIP_CONTENT_TYPE",
    "CORS_ALLOW_HEADERS", "CORS_ALLOW_METHODS", "CORS_MAX_AGE", "STAGE_MESSAGES", "GRAPH_SERIES",
    "GRAPH_CASE_LIMIT", "RULE", "is_project", "load_project", "project_data", "project_series_needed",
    "ProjectFiles", "ui_run_name", "MAX_UI_NAME",
]
