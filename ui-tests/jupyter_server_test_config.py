"""jupyter lab for the browser tests: Galata's test setup, on loopback, with a random port and token.

run-ui-tests.sh sets the VISCODER_LAB_* variables, starts the server with this file and stops it.
"""

import os

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821 (c is the config object jupyter passes in)

c.ServerApp.ip = "127.0.0.1"  # noqa: F821
c.ServerApp.port = int(os.environ["VISCODER_LAB_PORT"])  # noqa: F821
c.ServerApp.port_retries = 0  # noqa: F821
c.IdentityProvider.token = os.environ["VISCODER_LAB_TOKEN"]  # noqa: F821
c.ServerApp.root_dir = os.environ["VISCODER_LAB_ROOT"]  # noqa: F821
c.ServerApp.allow_root = True  # CI runs as root  # noqa: F821
c.ServerApp.open_browser = False  # noqa: F821
# Notebook 7 (the `notebook` package: /tree, /notebooks/...) exposes its app as window.jupyterapp too,
# as Galata's setup does for JupyterLab: tests/notebook7.spec.ts reads the shell's areas through it.
c.JupyterNotebookApp.expose_app_in_browser = True  # noqa: F821
