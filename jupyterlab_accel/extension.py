"""Server extension entry point: builds the runtime registry and registers /accel handlers."""


def _load_jupyter_server_extension(serverapp):
    serverapp.log.info("jupyterlab_accel loaded")
