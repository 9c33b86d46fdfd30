"""vp-jupyter: the Visual Plumes UM3 effluent-plume model for Python and Jupyter — the public API.

    import vp_jupyter as vp
    result = vp.run("case.json")        # a path, a dict in the case schema, or a Case
    result.plume                        # pandas DataFrame, SI, units in result.plume.attrs["units"]
    print(result.text_report())

Heavy modules (pandas, the engine, the input layer) are imported on first use, so `import vp_jupyter`
and the command line stay fast.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily by __getattr__)
_LAZY_NAMES = {
    "Case": "vp_jupyter.inputs",
    "CaseError": "vp_jupyter.inputs",
    "ModelSettings": "vp_jupyter.inputs",
    "Diffuser": "vp_jupyter.inputs",
    "AmbientProfile": "vp_jupyter.inputs",
    "AmbientLayer": "vp_jupyter.inputs",
    "Result": "vp_jupyter.results",
}

__all__ = ["run", "__version__", *_LAZY_NAMES]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .inputs import AmbientLayer, AmbientProfile, Case, CaseError, Diffuser, ModelSettings
    from .results import Result


def run(source: Any) -> "Result":
    """Run the UM3 model on a case and return its :class:`Result`.

    `source` is a path to a case JSON file, a dict in the case schema, or a :class:`Case`.
    Invalid input raises :class:`CaseError` listing every problem; so does a case the model
    refuses to run (for example an effluent concentration of zero).
    """
    from .engine.series import run_series
    from .inputs import Case, CaseError
    from .results import Result

    case = Case.load(source)
    engine_cases = case.engine_cases()
    series = run_series(engine_cases, case.time_step)
    for number, output in enumerate(series.plumes, start=1):
        if output.error:
            where = f"case {number}: " if len(engine_cases) > 1 else ""
            raise CaseError([f"{where}{output.error}"])
    return Result(case, series.plumes, engine_cases, series.farfields, series.tidal)


def __getattr__(name: str) -> Any:
    module_name = _LAZY_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'vp_jupyter' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
