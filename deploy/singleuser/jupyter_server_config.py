"""Jupyter server config of every single-user server on the hub (deploy/jupyterhub_config.py points
JUPYTER_CONFIG_PATH here; in a container image, copy it to <env>/etc/jupyter/jupyter_server_config.py).

The vp_jupyter extension then serves /user/<name>/visualplumes/ on each user's server, with that user's
own run store (~/.local/share/jupyter/vp_jupyter/runs, exported to the user's kernels as VP_JUPYTER_STORE,
so `vp.run()` records there). The shared store belongs to the hub service; notebooks reach it with
`vp.Client()`.
"""
c = get_config()  # noqa: F821 - provided by Jupyter when it loads this file

# `pip install` of a built package puts etc/jupyter/jupyter_server_config.d/vp_jupyter.json into the
# environment, which enables the extension; an editable install (`pip install -e`) does not, hence this.
c.ServerApp.jpserver_extensions.update({"vp_jupyter": True})

# Many users share the machine: each user's server runs its own models with a small pool.
c.VisualPlumesApp.max_workers = 1
c.VisualPlumesApp.max_concurrent_runs_per_user = 2
