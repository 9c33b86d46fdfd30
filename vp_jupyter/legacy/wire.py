"""The legacy wire format, HTTP side (legacy-http-api.md §1): endpoint paths, content types, CORS headers
of allowed origins, the archive's download name and the health answer."""
from __future__ import annotations

import json
import re

RUN_ANALYSIS_PATH = "run_analysis"                  # §1.1: no trailing slash
DOWNLOAD_ZIP_PATH = "download_zip_archive"
DOWNLOAD_ZIP_ROUTE = DOWNLOAD_ZIP_PATH + r"/([^/]+)"  # §1.1: the id is one path segment
SUCCESS_CONTENT_TYPE = "application/json"           # §5.1 (the body is a JSON string)
ERROR_CONTENT_TYPE = "application/json"             # §4.1
HEALTH_CONTENT_TYPE = "application/json"            # §1.1
ZIP_CONTENT_TYPE = "application/zip"                # §6.4
# §1.3: the preflight answer of the legacy back end (django-cors-headers defaults)
CORS_ALLOW_HEADERS = "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with"
CORS_ALLOW_METHODS = "DELETE, GET, OPTIONS, PATCH, POST, PUT"
CORS_MAX_AGE = "86400"
HEALTH_MESSAGE = "Success!"


def cors_headers(origin: str) -> dict[str, str]:
    """Headers of an answer to an allowed `origin` (§1.3, §12): the origin echoed, with credentials."""
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}


def preflight_headers(origin: str) -> dict[str, str]:
    """Headers of the answer to a CORS preflight from an allowed `origin` (§1.3)."""
    return {**cors_headers(origin), "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
            "Access-Control-Allow-Methods": CORS_ALLOW_METHODS, "Access-Control-Max-Age": CORS_MAX_AGE}


_SAFE_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def check_run_id(run_id: str) -> str:
    """Run ids become file names (§6.3); only a flat, URL-safe name is accepted here."""
    if not isinstance(run_id, str) or not _SAFE_RUN_ID.fullmatch(run_id):
        raise ValueError(f"run id must match {_SAFE_RUN_ID.pattern} (got {run_id!r})")
    return run_id


def archive_filename(run_id: str) -> str:
    """The download's file name, `output_<id>.zip` (§6.4)."""
    return f"output_{check_run_id(run_id)}.zip"


def content_disposition(run_id: str) -> str:
    """An attachment with the legacy file name (frontend-client.md §a recommends attachment over inline)."""
    return f'attachment; filename="{archive_filename(run_id)}"'


def health_body() -> str:
    """GET /app/ and GET /app/run_analysis (§1.1, Q15)."""
    return json.dumps({"message": HEALTH_MESSAGE})

