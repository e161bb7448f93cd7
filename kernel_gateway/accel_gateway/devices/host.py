"""Host metrics (RAM, CPU, disk) and process trees through psutil."""

from __future__ import annotations

import psutil


def host_sample(workspace: str) -> dict:
    mem = psutil.virtual_memory()
    disk = psutil.disk_usage(workspace)
    return {
        "memory_used": mem.total - mem.available,
        "memory_total": mem.total,
        "cpu_percent": psutil.cpu_percent(interval=None),  # since the previous call
        "disk_used": disk.used,
        "disk_total": disk.total,
    }


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants; empty when it is gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_rss(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total
