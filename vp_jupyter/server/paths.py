"""Where the server's pages and endpoints live: the mount under the Jupyter server's base URL (imported by
the extension app and by the handlers, so neither imports the other)."""
from __future__ import annotations

URL_PREFIX = "visualplumes"       # <base_url>visualplumes/: the home page; app/… legacy; api/… JSON API
