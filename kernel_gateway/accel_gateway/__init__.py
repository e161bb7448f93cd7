"""jupyterlab-accel's kernel gateway: serves kernels, devices, metrics and mounts of one
accelerator host over the standard Jupyter API plus /api/accel."""

from ._version import __version__


def _jupyter_server_extension_points():
    return [{"module": "accel_gateway.extension"}]


__all__ = ["__version__"]
