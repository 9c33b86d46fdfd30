"""The Jupyter server extension: legacy Visual Plumes endpoints and the JSON API (Tornado handlers).

Loaded by `jupyter server` through `vp_jupyter._jupyter_server_extension_points`; configured with the
traitlets of :class:`vp_jupyter.server.app.VisualPlumesApp`.
"""
