"""Terminals on this runtime (jupyter_server_terminals behind the gateway's auth), started in the
workspace with the kernels' environment rules: the gateway's token never reaches a shell, and
the variables every kernel gets (Mount drive's) are there too. Culled by the kernels' idle rule.

On by default; `--ServerApp.terminals_enabled=False` turns them off (the runtime then lists no
"terminals" feature and the server extension shows that reason instead of a broken tab).
"""

from __future__ import annotations

import os
from typing import Any

from jupyter_server_terminals.terminalmanager import TerminalManager
from traitlets import default

from .limits import KernelLimits

PRIVATE_ENV = ("JUPYTER_TOKEN", "JUPYTER_GATEWAY_AUTH_TOKEN", "KG_AUTH_TOKEN")


class AccelTerminalManager(TerminalManager):
    """Terminals with the kernels' environment rules, starting in the workspace."""

    @default("cull_inactive_timeout")
    def _default_cull_inactive_timeout(self):
        return int(KernelLimits(parent=self.parent).idle_timeout or 0)

    @default("cull_interval")
    def _default_cull_interval(self):
        return 60

    def make_term_env(
        self,
        height: int = 25,
        width: int = 80,
        winheight: int = 0,
        winwidth: int = 0,
        **kwargs: Any,
    ) -> dict[str, str]:
        env = super().make_term_env(height, width, winheight, winwidth, **kwargs)
        for key in PRIVATE_ENV:
            env.pop(key, None)
        km = getattr(self.parent, "kernel_manager", None)
        for key, value in (getattr(km, "kernel_env", None) or {}).items():
            env.setdefault(key, value)
        env.pop("JUPYTER_SERVER_URL", None)  # where the gateway listens: not the shell's business
        return env

    def new_terminal(self, **kwargs: Any):
        if not kwargs.get("cwd"):
            kwargs["cwd"] = getattr(self.parent, "root_dir", None) or os.getcwd()
        return super().new_terminal(**kwargs)


def setup_terminals(ctx) -> None:
    """List the feature when this gateway serves terminals (the stock extension's handlers)."""
    if getattr(ctx.serverapp, "terminals_enabled", False):
        ctx.features.append("terminals")
