"""jupyterlab-accel: route each notebook's kernel to the runtime (accelerator host) it chose."""

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "dev"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "jupyterlab-accel"}]


def _jupyter_server_extension_points():
    from .extension import AccelExtension

    return [{"module": "jupyterlab_accel", "app": AccelExtension}]
