"""Kernel limits: idle timeout, maximum lifetime, maximum kernels; notices before culling.

`KernelLimits` holds the rules and computes expiries (no I/O). `Culler` applies them to a kernel
manager periodically: it warns each kernel's clients `cull_warning` seconds ahead, then says
"culled" and shuts the kernel down.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from tornado.ioloop import PeriodicCallback
from traitlets import Bool, Float, Integer, validate
from traitlets.config import LoggingConfigurable

from .allocation import Refused
from .settings import at_least, positive


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Expiry:
    at: datetime | None
    reason: str | None  # "idle" | "lifetime"

    def seconds_left(self, now: datetime) -> float | None:
        return None if self.at is None else (self.at - now).total_seconds()


class KernelLimits(LoggingConfigurable):
    """The rules. Colab's defaults: about 90 minutes idle, 12 hours at most."""

    idle_timeout = Float(
        5400,
        config=True,
        help="Seconds without kernel activity after which a kernel is culled. 0 disables.",
    )
    max_lifetime = Float(
        43200,
        config=True,
        help="Seconds after its start at which a kernel is culled, busy or not. 0 disables.",
    )
    max_kernels = Integer(
        0,
        config=True,
        help="Most kernels running at once; further starts are refused (503). 0: unlimited.",
    )
    cull_warning = Float(
        300,
        config=True,
        help="Seconds before culling at which the kernel's clients get an accel_notice warning.",
    )
    check_interval = Float(30, config=True, help="Seconds between checks of kernel expiries.")
    cull_busy = Bool(
        False,
        config=True,
        help="Cull kernels that are busy (executing) when their idle timeout passes.",
    )

    # A bad value stops the gateway's start with a message naming it (app.py), instead of a
    # culler that never runs (check_interval 0) or a runtime that refuses everything.
    @validate("idle_timeout", "max_lifetime", "cull_warning")
    def _check_seconds(self, proposal):
        return at_least(self, proposal, 0, "seconds (0 disables)")

    @validate("check_interval")
    def _check_interval(self, proposal):
        return positive(self, proposal, "seconds")

    @validate("max_kernels")
    def _check_max_kernels(self, proposal):
        return at_least(self, proposal, 0, "kernels (0: unlimited)")

    def admit(self, running: int) -> None:
        """Raise Refused when another kernel would exceed max_kernels."""
        if self.max_kernels and running >= self.max_kernels:
            raise Refused(
                f"This runtime allows {self.max_kernels} kernel(s) at once; shut one down first.",
                "max_kernels",
            )

    def expiry(self, started: datetime, last_activity: datetime, busy: bool) -> Expiry:
        candidates = []
        if self.idle_timeout > 0 and (self.cull_busy or not busy):
            candidates.append((last_activity + timedelta(seconds=self.idle_timeout), "idle"))
        if self.max_lifetime > 0:
            candidates.append((started + timedelta(seconds=self.max_lifetime), "lifetime"))
        if not candidates:
            return Expiry(None, None)
        at, reason = min(candidates)
        return Expiry(at, reason)

    def to_dict(self) -> dict:
        return {
            "idle_timeout": self.idle_timeout,
            "max_lifetime": self.max_lifetime,
            "max_kernels": self.max_kernels,
            "cull_warning": self.cull_warning,
        }


def notice(kind: str, expiry: Expiry, now: datetime) -> dict:
    """Content of an accel_notice iopub message, for an expiry with a time (the culler's check)."""
    assert expiry.at is not None, "notice for a kernel without a deadline"
    left = max(0, round(expiry.seconds_left(now) or 0))
    why = "it has been idle" if expiry.reason == "idle" else "it reached its maximum lifetime"
    if kind == "cull_warning":
        text = f"This runtime will be stopped in {_duration(left)} because {why}. " + (
            "Run a cell or send a keep-alive to keep it."
            if expiry.reason == "idle"
            else "Save your work."
        )
    else:
        text = f"This runtime was stopped because {why}."
    return {
        "kind": kind,
        "reason": expiry.reason,
        "expires_at": expiry.at.isoformat(),
        "seconds_left": left,
        "message": text,
    }


def _duration(seconds: int) -> str:
    if seconds >= 120:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"


class Culler:
    """Applies KernelLimits to a kernel manager (AccelKernelManager's expiry/notice methods)."""

    def __init__(self, limits: KernelLimits, kernel_manager):
        self.limits = limits
        self.km = kernel_manager
        self._warned: dict[str, datetime] = {}
        self._running = False
        self._timer: PeriodicCallback | None = None

    def start(self) -> None:
        if self._timer is None and (self.limits.idle_timeout or self.limits.max_lifetime):
            self._timer = PeriodicCallback(self._tick, self.limits.check_interval * 1000)
            self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def forget(self, kernel_id: str) -> None:
        self._warned.pop(kernel_id, None)

    async def _tick(self) -> None:
        if self._running:
            return
        self._running = True
        try:
            await self.check()
        except Exception:
            self.limits.log.exception("Kernel expiry check failed")
        finally:
            self._running = False

    async def check(self, now: datetime | None = None) -> None:
        now = now or utcnow()
        for kid in list(self.km.list_kernel_ids()):
            expiry = self.km.kernel_expiry(kid)
            left = expiry.seconds_left(now)
            if left is None:
                continue
            if left <= 0:
                self.limits.log.info("Culling kernel %s (%s)", kid, expiry.reason)
                self.km.send_notice(kid, notice("culled", expiry, now))
                await asyncio.sleep(0)  # let the notice go out before the sockets close
                try:
                    await self.km.shutdown_kernel(kid)
                except Exception as e:
                    self.limits.log.warning("Culling kernel %s failed: %s", kid, e)
                self.forget(kid)
            elif left <= self.limits.cull_warning and self._warned.get(kid) != expiry.at:
                self._warned[kid] = expiry.at
                self.km.send_notice(kid, notice("cull_warning", expiry, now))
