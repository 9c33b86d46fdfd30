"""The OpenAPI 3.1 description of the JSON API and the legacy endpoints (served at `api/openapi.json`)."""
from __future__ import annotations

from typing import Any

from .. import __version__
from ..store import DEFAULT_PAGE, LIST_FILTERS, MAX_PAGE


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = {"type": "object", "properties": {"error": {"type": "string"}, "status": {"type": "integer"},
                                          "problems": {"type": "array", "items": {"type": "string"}}},
         "required": ["error"]}
RUN_STATUS = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": r"^\d{8}T\d{6}Z-[0-9a-f]{32}$"},
        "status": {"enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
        "progress": {"type": "object", "properties": {"done": {"type": "integer"}, "total": {"type": "integer"}}},
        "source": {"enum": ["notebook", "ui", "api", "cli"]},
        "owner": {"type": "string"}, "case_name": {"type": "string"}, "case_count": {"type": "integer"},
        "created": {"type": "string"}, "started": {"type": ["string", "null"]},
        "finished": {"type": ["string", "null"]}, "duration_s": {"type": ["number", "null"]},
        "error": {"type": ["string", "null"]},
        "kind": {"enum": ["run", "study"]},
        "links": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["id", "status"],
}


def openapi_document(mount_url: str = "/visualplumes", authentication: str = "") -> dict[str, Any]:
    """The document for the endpoints mounted at `mount_url` (a URL path, e.g. `/visualplumes` or
    `/services/visualplumes`); `authentication` says how clients authenticate there."""
    from ..inputs import json_schema

    base = mount_url.rstrip("/")
    run_id = {"name": "run_id", "in": "path", "required": True, "schema": RUN_STATUS["properties"]["id"]}
    not_found = _json(ERROR, "No run with this id that you may see (or the id is malformed).")
    return {
        "openapi": "3.1.0",
        "info": {"title": "vp-jupyter: Visual Plumes in Jupyter", "version": __version__,
                 "description": "Run the Visual Plumes UM3 model (with Brooks far field and tidal buildup) and "
                                "manage the shared run archive. Authentication: "
                                + (authentication or "a token (`Authorization: token …`).")},
        "servers": [{"url": base}],
        "components": {"schemas": {"Case": json_schema(), "RunStatus": RUN_STATUS, "Error": ERROR},
                       "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "Authorization"}}},
        "security": [{"token": []}],
        "paths": {
            "/api/runs": {
                "get": {"summary": "A page of runs you may see, newest first (follow `next` for the rest)",
                        "parameters": [
                            {"name": "limit", "in": "query", "required": False,
                             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE}},
                            {"name": "before", "in": "query", "required": False, "schema": {"type": "string"},
                             "description": "the cursor in the previous page's `next` link"},
                            *({"name": key, "in": "query", "required": False, "schema": {"type": "string"},
                               "description": about} for key, about in LIST_FILTERS.items())],
                        "responses": {"200": _json({"type": "object", "properties": {
                            "runs": {"type": "array", "items": {"$ref": "#/components/schemas/RunStatus"}},
                            "limit": {"type": "integer"}, "next": {"type": ["string", "null"]}}},
                            "The page, and the path of the next page (null on the last)."),
                            "400": _json(ERROR, "A bad limit, cursor or filter (named in the error).")}},
                "post": {"summary": "Start a run of a case; it proceeds in the background",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/Case"}}}},
                         "responses": {"202": _json(RUN_STATUS, "Accepted: the run id and its links."),
                                       "400": _json(ERROR, "Invalid case: every problem names the field."),
                                       "413": _json(ERROR, "Request body over max_upload_bytes."),
                                       "429": _json(ERROR, "Too many runs in progress for this user."),
                                       "503": _json(ERROR, "The server cannot take the run now: too many "
                                                           "requests being checked, or the store cannot be "
                                                           "written (the error says which).")}},
            },
            "/api/runs/{run_id}": {
                "parameters": [run_id],
                "get": {"summary": "Status, progress, timings and error of a run",
                        "responses": {"200": _json(RUN_STATUS, "The run."), "404": not_found}},
                "delete": {"summary": "Cancel a queued/running run or delete a finished one",
                           "responses": {"204": {"description": "Done."}, "404": not_found}},
            },
            "/api/runs/{run_id}/result": {
                "parameters": [run_id],
                "get": {"summary": "The full result (plume, far field, tidal buildup, memos) as JSON",
                        "responses": {"200": _json({"type": "object"}, "The result."), "404": not_found,
                                      "409": _json(ERROR, "The run has not succeeded.")}},
            },
            "/api/runs/{run_id}/archive": {
                "parameters": [run_id],
                "get": {"summary": "The run's archive (legacy zip layout)",
                        "responses": {"200": {"description": "The zip.",
                                              "content": {"application/zip": {}}}, "404": not_found}},
            },
            "/api/runs/{run_id}/report": {
                "parameters": [run_id],
                "get": {"summary": "The self-contained HTML report of a run or study (inputs, summary, plots, "
                                   "text report, memos, deviations, provenance)",
                        "responses": {"200": {"description": "The report.", "content": {"text/html": {}}},
                                      "404": not_found, "409": _json(ERROR, "The run has not succeeded.")}},
            },
            "/api/studies": {
                "post": {"summary": "Start an uncertainty or sensitivity study of a case; it proceeds in the "
                                    "background and is then one entry of api/runs (kind 'study')",
                         "description": "Body: {study: 'uncertainty', case, inputs: {key: ['normal', mean, sd] | "
                                        "['uniform', low, high] | ['lognormal', median, gsd] | "
                                        "['triangular', low, mode, high] | ['constant', value]}, n, seed, method "
                                        "('lhs', 'sobol', 'random'), target_dilution, concentration_limit} or "
                                        "{study: 'sensitivity', case, bounds: {key: [low, high]}, method ('sobol', "
                                        "'morris'), n, seed, output}. Its result (api/runs/{id}/result) is the "
                                        "study document: members table, quantiles, indices.",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"type": "object", "required": ["study", "case"]}}}},
                         "responses": {"202": _json(RUN_STATUS, "Accepted: the study's run id and its links."),
                                       "400": _json(ERROR, "Invalid study: every problem is named."),
                                       "429": _json(ERROR, "Too many runs or studies in progress for this user.")}},
            },
            "/api/schema": {"get": {"summary": "JSON Schema of the case format",
                                    "responses": {"200": _json({"type": "object"}, "The schema.")}}},
            "/api/openapi.json": {"get": {"summary": "This document",
                                          "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")}}},
            "/app/run_analysis": {
                "get": {"summary": "Legacy health check", "responses": {"200": _json({"type": "object"}, "Success!")}},
                "post": {"summary": "Legacy run (multipart: projectData + time-series CSV parts)",
                         "description": "Wire-compatible with the Visual Plumes web UI: a double-encoded JSON "
                                        "string on success, {success: false, error} with HTTP 200 on error.",
                         "requestBody": {"content": {"multipart/form-data": {"schema": {
                             "type": "object", "properties": {"projectData": {"type": "string"}},
                             "required": ["projectData"]}}}},
                         "responses": {"200": {"description": "Double-encoded result, or the legacy error object."},
                                       "403": _json(ERROR, "Origin not allowed.")}},
            },
            "/app/download_zip_archive/{run_id}": {
                "parameters": [run_id],
                "get": {"summary": "Legacy archive download",
                        "responses": {"200": {"description": "The zip.", "content": {"application/zip": {}}},
                                      "404": not_found}},
            },
        },
    }
