"""Notebook widgets of vp-jupyter: `CaseForm`, the case form generated from the field tables.

    import vp_jupyter as vp
    form = vp.CaseForm()                 # or vp.CaseForm("case.json"), vp.CaseForm.from_run(run_id)
    form                                 # Diffuser / Ambient / Model settings / Time series tabs, Load, Save, Run

Modules: `fields` (one FieldSpec -> label, input, unit drop-down, message; problem routing), `ambient` (the
ambient table), `series` (time range and series rows), `output` (summary, plot and download links), `form`
(`CaseForm`). Needs ipywidgets (>= 8).
"""
from __future__ import annotations

try:
    import ipywidgets  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("vp_jupyter.widgets needs ipywidgets: pip install 'ipywidgets>=8'") from err

from .form import CaseForm, model_group

__all__ = ["CaseForm", "model_group"]
