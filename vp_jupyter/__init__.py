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


def run(source: Any, *, store: Any = False, source_label: str = "notebook") -> "Result":
    """Run the UM3 model (with far field and tidal buildup when the case asks) and return its :class:`Result`.

    `source` is a path to a case JSON file, a dict in the case schema, or a :class:`Case`.
    Invalid input raises :class:`CaseError` listing every problem; so does a case the model
    refuses to run. `store`: False keeps the result in memory only; True records the run in the
    archive store ($VP_JUPYTER_STORE, the one the Jupyter server uses); a
    :class:`~vp_jupyter.store.RunStore` records it there. A recorded result has its `run_id`.
    """
    import time

    from .engine.series import run_series
    from .inputs import Case, CaseError
    from .results import Result

    case = Case.load(source)
    started = time.time()
    engine_cases = case.engine_cases()
    series = run_series(engine_cases, case.time_step)
    for number, output in enumerate(series.plumes, start=1):
        if output.error:
            where = f"case {number}: " if len(engine_cases) > 1 else ""
            raise CaseError([f"{where}{output.error}"])
    result = Result(case, series.plumes, engine_cases, series.farfields, series.tidal)
    if store is not False and store is not None:
        import getpass

        from .legacy import archive_bytes
        from .store import RunStore, new_run_id

        target = RunStore() if store is True else store
        run_id = new_run_id()
        record = target.save(case, result, source=source_label, owner=getpass.getuser(), status="succeeded",
                             started=started, finished=time.time(), run_id=run_id,
                             archive_bytes=archive_bytes(result, run_id))
        result.run_id = record.id
    return result


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Entry point for `jupyter server`: the Visual Plumes extension app."""
    from .server.app import VisualPlumesApp

    return [{"module": "vp_jupyter.server.app", "app": VisualPlumesApp}]


def __getattr__(name: str) -> Any:
    module_name = _LAZY_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'vp_jupyter' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
