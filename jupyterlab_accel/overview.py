"""Every kernel on every runtime, joined with this server's sessions: runtime, start time,
last activity, expiry (from the gateway's /api/accel/kernels), cost so far and, for a kernel in
a cluster job, the job (id, node, time left). Also every runtime's terminals."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

from jupyter_core.utils import ensure_async

from .names import remote_name
from .runtime import Runtime


def _parse_time(value) -> datetime | None:
    if not value:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def cost(price_per_hour: float | None, started, now: datetime | None = None) -> float | None:
    start = _parse_time(started)
    if price_per_hour is None or start is None:
        return None
    now = now or datetime.now(timezone.utc)
    return round(max(0.0, (now - start).total_seconds()) / 3600 * price_per_hour, 4)


async def runtime_kernels(rt: Runtime, http, timeout: float) -> list[dict] | None:
    """The runtime's kernels (/api/accel/kernels, else the standard /api/kernels); None if down.
    `http` is unused (each runtime has its own client), kept for callers."""
    paths = ["/api/accel/kernels", "/api/kernels"] if rt.supports_accel else ["/api/kernels"]
    for path in paths:
        try:
            resp = await rt.api(path, timeout=timeout)
        except OSError:  # down, or a bad answer (then marked unhealthy with the reason)
            return None
        if resp.code == 200:
            return json.loads(resp.body)  # a list of kernel objects: checked by rt.api
    return None


async def all_sessions(registry, km, sm, timeout: float = 2.0) -> list[dict]:
    await registry.check_all()
    rts = [rt for rt in registry.all() if rt.healthy]
    listed = await asyncio.gather(*(runtime_kernels(rt, registry.http, timeout) for rt in rts))
    sessions = {s["kernel"]["id"]: s for s in await sm.list_sessions() if s.get("kernel")}
    remote = km.remote_kernels() if hasattr(km, "remote_kernels") else {}
    rows = []
    for rt, kernels in zip(rts, listed):
        if kernels is None:  # listing forbidden (stock Kernel Gateway): the kernels we started
            kernels = []
            for kid, rk in remote.items():
                if rk.rt is rt:
                    await rk.refresh(timeout)
                    if not rk.gone:
                        kernels.append(dict(rk.model, name=rk.remote_spec))
        for k in kernels:
            kid = k.get("id")
            ours = remote.get(kid)
            s = sessions.get(kid, {})
            started = k.get("started") or (ours.started if ours else None)
            rows.append(
                {
                    "kernel_id": kid,
                    "session_id": s.get("id"),
                    "path": s.get("path"),
                    "kernel_name": ours.kernel_name
                    if ours
                    else remote_name(rt.name, str(k.get("name"))),
                    "runtime": rt.name,
                    "started": started,
                    "last_activity": k.get("last_activity"),
                    "execution_state": k.get("execution_state"),
                    "expires_at": k.get("expires_at"),
                    "expiry_reason": k.get("expiry_reason"),
                    "cost": cost(rt.price_per_hour, started),
                    "job": job_of(rt),
                }
            )
    # Kernels of this server itself (stock local kernels) are listed too, runtime null.
    local = km.local_kernel_ids() if hasattr(km, "local_kernel_ids") else km.list_kernel_ids()
    for kid in local:
        try:
            model = await ensure_async(km.kernel_model(kid))
        except Exception:  # noqa: BLE001 - a kernel that just went away
            continue
        s = sessions.get(kid, {})
        rows.append(
            {
                "kernel_id": kid,
                "session_id": s.get("id"),
                "path": s.get("path"),
                "kernel_name": model.get("name"),
                "runtime": None,
                "started": None,
                "last_activity": model.get("last_activity"),
                "execution_state": model.get("execution_state"),
                "expires_at": None,
                "expiry_reason": None,
                "cost": None,
                "job": None,
            }
        )
    return rows


def job_of(rt: Runtime) -> dict | None:
    """The cluster job a runtime is (SLURM job runtimes): id, state, node, time left."""
    provider = getattr(rt, "provider", None)
    if provider is None or getattr(provider, "kind", None) != "slurm":
        return None
    model = provider.public_model()
    return {**model["details"], "message": model["message"], "state": model["state"]}


async def runtime_terminals(rt: Runtime, timeout: float) -> list[dict]:
    """The runtime's terminals (its /api/terminals); none where it serves none or is down."""
    if "terminals" not in ((rt.info or {}).get("features") or []):
        return []
    try:
        resp = await rt.api("/api/terminals", timeout=timeout)
        terminals = json.loads(resp.body) if resp.code == 200 else []
    except (OSError, ValueError):
        return []
    if not isinstance(terminals, list):
        return []
    return [
        {
            "runtime": rt.name,
            "runtime_display_name": rt.display_name,
            "name": str(t["name"]),
            "last_activity": t.get("last_activity"),
        }
        for t in terminals
        if isinstance(t, dict) and isinstance(t.get("name"), str)
    ]


async def all_terminals(registry, timeout: float = 2.0) -> list[dict]:
    """Every terminal on every healthy runtime that has the "terminals" feature."""
    await registry.check_all()
    rts = [rt for rt in registry.all() if rt.healthy]
    listed = await asyncio.gather(*(runtime_terminals(rt, timeout) for rt in rts))
    return [t for terminals in listed for t in terminals]


async def find_runtime_of(registry, km, kernel_id: str, timeout: float = 2.0) -> Runtime | None:
    """The runtime a kernel is on: from our map, else by asking every healthy runtime."""
    rk = km.remote_kernel(kernel_id) if hasattr(km, "remote_kernel") else None
    if rk is not None:
        return rk.rt
    await registry.check_all()
    rts = [rt for rt in registry.all() if rt.healthy]
    listed = await asyncio.gather(*(runtime_kernels(rt, registry.http, timeout) for rt in rts))
    for rt, kernels in zip(rts, listed):
        if any(k.get("id") == kernel_id for k in kernels or []):
            return rt
    return None
