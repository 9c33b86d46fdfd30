"""Example JupyterHub configuration for Visual Plumes (vp-jupyter). README: "Deploying on JupyterHub".

What runs where:

* the hub and its proxy (configurable-http-proxy, from npm): `https://<hub>/`;
* the "visualplumes" managed service, started and stopped by the hub (`python -m vp_jupyter.hub_service`),
  at `https://<hub>/services/visualplumes/`. It owns the shared run store, runs the model and decides
  who sees which run (own runs; runs of team members; everything for hub admins);
* each user's single-user server, with the vp_jupyter extension at `/user/<name>/visualplumes/` (that
  user's own store) and notebooks whose `vp.Client()` sends runs to the service's shared store.

Keep the three files of this folder together (README: copied to /etc/jupyterhub) and start the hub as
root, in the folder that keeps its database and cookie secret:

    cd /srv/jupyterhub && jupyterhub -f /etc/jupyterhub/jupyterhub_config.py

Paths below follow the README: software in the virtual environment that runs this file (sys.executable),
the shared store in /srv/visualplumes/runs owned by the unix user `visualplumes`.
"""
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent                    # the environment that runs the hub

SERVICE = "visualplumes"                             # fixes the URL prefix /services/visualplumes/
SERVICE_URL = "http://127.0.0.1:10101"               # where the service listens (the proxy forwards to it)
SERVICE_USER = "visualplumes"                        # unix user that runs the service and owns the store
STORE = "/srv/visualplumes/runs"                     # the shared run store (see the README on permissions)
TEAM_GROUPS = {"outfall-team": ["alice", "carol"]}   # hub groups and members; the service's team_groups
                                                     # (visualplumes_service_config.py) names them

# --- 1. Who may log in ------------------------------------------------------------------------------
# DummyAuthenticator accepts ANY allowed user name with ONE shared password. It is here so the deployment
# can be tried out on a private machine. It is NOT for production: use a real authenticator instead.
c.JupyterHub.authenticator_class = "dummy"
if not os.environ.get("VP_HUB_TRYOUT_PASSWORD"):
    sys.exit("jupyterhub_config.py: set VP_HUB_TRYOUT_PASSWORD (the try-out password of DummyAuthenticator), "
             "or switch to a real authenticator (see the comments of section 1)")
c.DummyAuthenticator.password = os.environ["VP_HUB_TRYOUT_PASSWORD"]
#
# Production: delete the three statements above and pick a real authenticator, e.g.
#   * PAM, JupyterHub's default: the machine's own unix accounts and passwords (nothing to configure);
#   * NativeAuthenticator (pip install jupyterhub-nativeauthenticator): users sign up, an admin approves;
#       c.JupyterHub.authenticator_class = "native"
#       c.NativeAuthenticator.open_signup = False
#   * an OAuth provider (pip install oauthenticator), e.g. GitHub:
#       c.JupyterHub.authenticator_class = "github"
#       c.GitHubOAuthenticator.oauth_callback_url = "https://hub.example.org/hub/oauth_callback"
#       c.GitHubOAuthenticator.client_id = os.environ["GITHUB_CLIENT_ID"]
#       c.GitHubOAuthenticator.client_secret = os.environ["GITHUB_CLIENT_SECRET"]
#   With LocalProcessSpawner (section 2) every hub user must also be a unix account of the same name.
c.Authenticator.allowed_users = {"alice", "bob", "carol"}
c.Authenticator.admin_users = {"hubadmin"}           # hub admins: see every run when admins_see_all

# --- 2. Single-user servers -------------------------------------------------------------------------
# LocalProcessSpawner (the default) starts each user's server as the unix user of the same name.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.environment = {
    # where notebooks reach the service: vp.Client() reads it (else it asks the hub API)
    "VP_JUPYTER_SERVICE_URL": f"{SERVICE_URL}/services/{SERVICE}/",
    # the single-user extension config (enables vp_jupyter even for an editable install; README)
    "JUPYTER_CONFIG_PATH": str(HERE / "singleuser"),
}
# The token a server gets as $JUPYTERHUB_API_TOKEN (its kernels use it, so does vp.Client()): the
# default scopes of the "server" role, access to the service, and reading the service's entry (where
# vp.Client() finds the service without VP_JUPYTER_SERVICE_URL). A server's token never holds more than
# its user has, so the "user" role below grants the same two scopes.
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    f"access:services!service={SERVICE}",
    f"read:services!service={SERVICE}",
]

# --- 3. The Visual Plumes service -------------------------------------------------------------------
c.JupyterHub.services = [
    {
        "name": SERVICE,
        "url": SERVICE_URL,
        "command": [sys.executable, "-m", "vp_jupyter.hub_service",
                    f"--config={HERE / 'visualplumes_service_config.py'}"],
        "user": SERVICE_USER,           # needs a hub running as root; remove to run as the hub's user
        "cwd": str(Path(STORE).parent),
        "environment": {"VP_JUPYTER_STORE": STORE},
        "oauth_no_confirm": True,       # browsers (the web UI) log in to it without a confirmation page
    },
]

# --- 4. Roles, scopes and groups --------------------------------------------------------------------
c.JupyterHub.load_roles = [
    {
        # every user: the default "self", access to the service (browser login, API tokens) and its entry
        "name": "user",
        "scopes": ["self", f"access:services!service={SERVICE}", f"read:services!service={SERVICE}"],
    },
    {
        # the service reads the members of the team groups (GET /hub/api/groups/<name>)
        "name": "visualplumes-service",
        "scopes": ["read:groups"],
        "services": [SERVICE],
    },
]
c.JupyterHub.load_groups = {name: {"users": members} for name, members in TEAM_GROUPS.items()}
