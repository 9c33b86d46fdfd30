"""Jupyter server configuration for vp-jupyter: the embedded default of `jupyter server --config=jupyter_config.py`.

Every VisualPlumesApp setting is listed with its default; change what you need. The run archive is
shared: runs started from the web UI, the JSON API and notebooks (which inherit VP_JUPYTER_STORE from
this server) all land in the same store.
"""
c = get_config()  # noqa: F821 - provided by Jupyter when it loads this file

c.ServerApp.jpserver_extensions = {"vp_jupyter": True}
# open (and print) the Visual Plumes home page: what the server is, the runs, how to connect the web UI
c.ServerApp.default_url = "/visualplumes/"

import os  # noqa: E402

# Containers and CI machines often run as root; Jupyter refuses that unless told otherwise.
if hasattr(os, "geteuid") and os.geteuid() == 0:
    c.ServerApp.allow_root = True

# The Visual Plumes web UI's development origins: the UI may call the legacy run endpoint from here with
# the Jupyter login cookie (log in once at the server's URL in the same browser). legacy-http-api.md §12.
c.VisualPlumesApp.allowed_origins = ["http://localhost:3001", "http://127.0.0.1:3001"]

# Run archive: "" = $VP_JUPYTER_STORE, else <jupyter data dir>/vp_jupyter/runs
c.VisualPlumesApp.store_root = ""
# Model runs go to a process pool (never forked inside the server)
c.VisualPlumesApp.max_workers = 0                    # 0 = one worker per CPU core
c.VisualPlumesApp.mp_start_method = "spawn"          # or "forkserver"
# Limits
c.VisualPlumesApp.run_timeout = 600.0                # seconds of wall clock per run
c.VisualPlumesApp.max_cases = 100_000                # cases (time slices) per run
c.VisualPlumesApp.max_upload_bytes = 20 * 1024 * 1024
c.VisualPlumesApp.max_concurrent_runs_per_user = 4
# Retention of stored runs (0 = off)
c.VisualPlumesApp.retention_max_age_days = 0.0
c.VisualPlumesApp.retention_max_total_mb = 0.0
