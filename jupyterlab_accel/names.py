"""The one home of the kernel name scheme `accel--{runtime}--{spec}` (Python side; the
frontend's twin is labextension/src/names.ts).

Runtime names never contain "--" (runtime.NAME_RE), so a name splits back unambiguously."""

from __future__ import annotations

PREFIX = "accel--"
SEPARATOR = "--"


def remote_name(runtime: str, spec: str) -> str:
    """The kernel name this server lists for kernel spec `spec` of runtime `runtime`."""
    return f"{PREFIX}{runtime}{SEPARATOR}{spec}"


def parse_name(name: str | None) -> tuple[str, str] | None:
    """(runtime, spec) for a namespaced name; None for a local kernel name."""
    if not name or not name.startswith(PREFIX):
        return None
    runtime, sep, spec = name[len(PREFIX) :].partition(SEPARATOR)
    if not sep or not runtime or not spec:
        return None
    return runtime, spec


def is_remote(name: str | None) -> bool:
    return parse_name(name) is not None
