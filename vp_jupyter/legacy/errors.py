"""Legacy errors (legacy-http-api.md §4, Q16, Q17): the stage messages, `LegacyError`, the error body and
how a list of (stage, problem) pairs becomes one error text."""
from __future__ import annotations

import json

from ..inputs import CaseError

# §4.1 stage messages (verbatim), by stage number; 0 is the project's for a malformed request (Q17)
STAGE_REQUEST, STAGE_MODEL, STAGE_DIFFUSER_FILES, STAGE_DIFFUSER_STORE, STAGE_DIFFUSER = 0, 1, 2, 3, 4
STAGE_DIFFUSER_SERIES, STAGE_AMBIENT_FILES, STAGE_AMBIENT, STAGE_AMBIENT_SERIES, STAGE_INIT = 5, 6, 7, 8, 9
STAGE_RUN = 11
STAGE_MESSAGES = {
    STAGE_REQUEST: "Invalid run_analysis request, please check the request parts.",
    STAGE_MODEL: "Error loading model parameter input, please check Model Selection settings.",
    STAGE_DIFFUSER_FILES: "Error processing diffuser time series files, please check timeseries file format(s).",
    STAGE_DIFFUSER_STORE: "Error loading diffuser store options, please check options.",
    STAGE_DIFFUSER: "Error loading diffuser parameter input, please check input and re-run analysis.",
    STAGE_DIFFUSER_SERIES: "Error loading diffuser time series data, please check time series file data.",
    STAGE_AMBIENT_FILES: "Error processing ambient time series file(s), please check ambient time series file "
                         "formatting.",
    STAGE_AMBIENT: "Error loading ambient condition input options and/or data, please check ambient condition "
                   "tabs.",
    STAGE_AMBIENT_SERIES: "Error loading ambient time series data, please check ambient time series file data.",
    STAGE_INIT: "Error initializing UM3 model, please contact site administrators.",
    STAGE_RUN: "",
}
_EMPTY_ERROR = "Visual Plumes run failed without an error message."   # Q16: never empty


class LegacyError(ValueError):
    """A request the legacy endpoint refuses. `str(err)` / `err.message` is the text for the legacy error
    body (§4.1 stage message + field, reason and value, Q16); `err.problems` lists the single problems."""

    def __init__(self, message: str, problems: "list[str] | None" = None):
        self.message = message.strip() or _EMPTY_ERROR
        self.problems = list(problems) if problems else [self.message]
        super().__init__(self.message)


def request_error(text: str) -> LegacyError:
    """The error of a malformed request (Q17: the JSON error object, never an HTTP error page)."""
    return LegacyError(f"{STAGE_MESSAGES[STAGE_REQUEST]} {text}", [text])


def error_body(message: str) -> str:
    """The handled-error body of §4.1: a JSON *object* (not double-encoded), sent with HTTP 200."""
    text = message.strip() if isinstance(message, str) else str(message)
    return json.dumps({"success": False, "error": text or _EMPTY_ERROR})


def error_message(error: BaseException) -> str:
    """The legacy error text for an exception raised while running a parsed case (stages 10-11, Q16):
    `LegacyError` as it is, a `CaseError` (a case the model refuses) as its problems, anything else as its
    type and text. Never empty."""
    if isinstance(error, LegacyError):
        return error.message
    if isinstance(error, CaseError):
        return "; ".join(p for p in error.problems if p) or _EMPTY_ERROR
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def join_problems(problems: list[tuple[int, str]]) -> tuple[str, list[str]]:
    """One error text: per stage (in processing order) the stage message, then its problems."""
    ordered = sorted(problems, key=lambda item: item[0])
    lines: list[str] = []
    current = None
    for stage, text in ordered:
        prefix = STAGE_MESSAGES.get(stage, "")
        if stage != current:
            lines.append(f"{prefix} {text}".strip())
            current = stage
        else:
            lines[-1] += f"; {text}"
    return "\n".join(lines), [text for _, text in ordered]
