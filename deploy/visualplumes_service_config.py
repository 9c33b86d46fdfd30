"""Settings of the "visualplumes" JupyterHub service (`python -m vp_jupyter.hub_service --config=<this file>`;
deploy/jupyterhub_config.py starts it so). Any setting can also be given on the command line, e.g.
`--VisualPlumesHubService.max_workers=8`.
"""
c = get_config()  # noqa: F821 - provided by the service when it loads this file

# Store: "" = $VP_JUPYTER_STORE, which jupyterhub_config.py sets in the service's environment.
c.VisualPlumesHubService.store_root = ""
# Signs the service's login cookies; kept in a file (created, mode 600), browsers stay logged in when the
# service restarts. Must be writable by the service's user when it does not exist yet.
c.VisualPlumesHubService.cookie_secret_file = "/srv/visualplumes/cookie_secret"

# Who sees which run: everyone their own; members of these hub groups the runs of the other members of
# the groups they share; hub admins every run (admins_see_all). Anyone else gets 404 for a run.
c.VisualPlumesHubService.team_groups = ["outfall-team"]
c.VisualPlumesHubService.admins_see_all = True

# Workers. "local": a process pool on the hub machine, max_workers processes (0 = one per CPU core).
c.VisualPlumesHubService.executor = "local"
c.VisualPlumesHubService.max_workers = 0
# More than one machine: a Dask cluster whose workers mount the store at the same path, e.g.
#   c.VisualPlumesHubService.executor = "dask"
#   c.VisualPlumesHubService.dask_scheduler_address = "tcp://10.0.0.5:8786"

# Limits
c.VisualPlumesHubService.run_timeout = 600.0                 # seconds of wall clock per run
c.VisualPlumesHubService.max_cases = 100_000                 # cases (time slices) per run
c.VisualPlumesHubService.max_upload_bytes = 20 * 1024 * 1024
c.VisualPlumesHubService.max_concurrent_runs_per_user = 4

# The Visual Plumes web front end, when served from another origin than the hub (its API_URL is
# https://<hub>/services/visualplumes/app); list that origin here.
c.VisualPlumesHubService.allowed_origins = []
