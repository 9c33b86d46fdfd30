"""Jupyter configuration for vp-jupyter (placeholder).

The vp-jupyter Jupyter server extension (legacy Visual Plumes HTTP API, JSON API, archive store) arrives
with a later issue, and its settings will be configured here (`jupyter server --config=jupyter_config.py`,
where Jupyter provides `c = get_config()`). Until then this file configures nothing.
"""
