"""Terminals on this runtime (jupyter_server_terminals behind the gateway's auth), started in the
workspace with the kernels' environment rules: the gateway's token never reaches a shell, and
the variables every kernel gets (Mount drive's) are there too. Culled by the kernels' idle rule.

On by default; `--ServerApp.terminals_enabled=False` turns them off (the runtime then lists no
"terminals" feature and the server extension shows that reason instead of a broken tab).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

from jupyter_server_terminals.terminalmanager import TerminalManager
from tornado.ioloop import PeriodicCallback
from traitlets import Float, default

from .limits import KernelLimits

PRIVATE_ENV = ("JUPYTER_TOKEN", "JUPYTER_GATEWAY_AUTH_TOKEN", "KG_AUTH_TOKEN")


class AccelTerminalManager(TerminalManager):
    """Terminals with the kernels' environment rules, starting in the workspace, culled by the
    kernels' idle rule with the same advance warning (a line written to the terminal's
    screens, not to its shell)."""

    cull_warning = Float(
        help="Seconds before an idle terminal is closed that its screens are told "
        "(default: KernelLimits.cull_warning).",
    ).tag(config=True)
    warning_interval = Float(5.0, help="Seconds between checks for terminals to warn.", config=True)

    @default("cull_warning")
    def _default_cull_warning(self):
        return float(KernelLimits(parent=self.parent).cull_warning or 0)

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

    def create(self, **kwargs: Any):
        model = super().create(**kwargs)
        if getattr(self, "_warner", None) is None and self.cull_inactive_timeout > 0:
            self._warned: set[str] = set()
            self._warner = PeriodicCallback(self.warn_idle, 1000 * self.warning_interval)
            self._warner.start()
        return model

    def warn_idle(self) -> None:
        """Tell the screens of a terminal about to be culled for inactivity, once per idle
        spell (typing in it is activity and starts a new one)."""
        now = datetime.now(timezone.utc)
        for name, term in list(self.terminals.items()):
            last = getattr(term, "last_activity", None)
            if last is None:
                continue
            idle = (now - last).total_seconds()
            left = self.cull_inactive_timeout - idle
            if left > self.cull_warning:
                self._warned.discard(name)
                continue
            if name in self._warned or left <= 0:
                continue
            self._warned.add(name)
            text = (
                f"\r\n\x1b[33m[jupyterlab-accel] This terminal has been idle for "
                f"{int(idle // 60)} min; it closes in {int(left)} s unless it is used.\x1b[0m\r\n"
            )
            for client in list(term.clients):
                client.on_pty_read(text)
            # The stock socket counts what it writes as activity: keep the idle spell going.
            term.last_activity = last  # type: ignore[attr-defined]  # set by stock terminals

    def new_terminal(self, **kwargs: Any):
        if not kwargs.get("cwd"):
            kwargs["cwd"] = getattr(self.parent, "root_dir", None) or os.getcwd()
        return super().new_terminal(**kwargs)


def setup_terminals(ctx) -> None:
    """List the feature when this gateway serves terminals (the stock extension's handlers)."""
    if getattr(ctx.serverapp, "terminals_enabled", False):
        ctx.features.append("terminals")
