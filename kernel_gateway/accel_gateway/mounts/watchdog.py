"""Watchdog of live mounts: a dead one (rclone exited, or [Errno 107] Transport endpoint is not
connected) is unmounted and remounted with the same cache dir, so closed files not yet uploaded
go up after all. Each event is recorded in the mount's status, which the UI polls."""

from __future__ import annotations

import asyncio


class Watchdog:
    def __init__(self, manager):
        self.manager = manager
        self.log = manager.log

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.manager.watchdog_interval)
            for m in list(self.manager.mounts.values()):
                if m.engine.live and m.state in ("mounted", "recovering") and not m.lock.locked():
                    try:
                        await self.check(m)
                    except Exception as e:  # never let one mount stop the watchdog
                        self.log.error("Watchdog: mount %s: %s", m.mount_point, e)

    async def check(self, m) -> bool:
        """Remount `m` if it is dead; True when a recovery was made."""
        try:
            # A hung FUSE server can block stat(): bound the check.
            problem = await asyncio.wait_for(asyncio.to_thread(m.engine.problem), 20)
        except asyncio.TimeoutError:
            problem = "mount stopped answering"
        if problem is None:
            return False
        async with m.lock:
            if m.engine.problem() is None:
                return False
            return await self._recover(m, problem)

    async def _recover(self, m, problem: str) -> bool:
        mgr = self.manager
        self.log.warning("Mount %s is dead (%s): remounting", m.mount_point, problem)
        m.event("dead", problem)
        if m.restarts >= mgr.max_restarts:
            m.state = "error"
            m.error = f"{problem}; gave up after {m.restarts} remounts"
            m.event("gave_up", m.error)
            return False
        m.state = "recovering"
        m.restarts += 1
        old = m.engine
        await asyncio.to_thread(old.stop)
        if old.proc is not None and old.proc.poll() is None:
            old.proc.kill()
        engine = type(old)(
            old.source, old.mount_point, old.cache_dir, old.log_file, old.settings, old.readonly
        )
        try:
            await asyncio.to_thread(engine.start, 60.0)
        except Exception as e:
            m.error = f"remount failed: {e}"
            m.event("remount_failed", str(e))
            await asyncio.to_thread(engine.stop)
            return False
        m.engine = engine
        m.state = "mounted"
        m.error = None
        if engine.salvaged:
            m.event("salvaged", "uploaded from the cache: " + ", ".join(engine.salvaged[:20]))
        m.event("remounted", f"recovered from: {problem}")
        return True
