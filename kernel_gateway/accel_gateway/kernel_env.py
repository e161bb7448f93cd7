"""Checks on the `env` a client sends with a kernel start (POST /api/kernels).

A value the operating system cannot put in a process environment (a NUL, `=` in a name, a value
over the kernel's per-string limit) would fail deep inside the kernel launch as a 500; here it is
a 400 whose message names the variable. Which names a kernel may receive is decided elsewhere
(`AccelKernelManager.client_env`); this only says whether the request is well formed.
"""

from __future__ import annotations

import re

# Linux refuses a single "NAME=value" string over 128 KiB (MAX_ARG_STRLEN) and the whole
# environment plus arguments over a quarter of the stack limit; stay well below both.
MAX_VALUE_BYTES = 32 * 1024
MAX_TOTAL_BYTES = 256 * 1024
MAX_VARIABLES = 256
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


class BadKernelEnv(ValueError):
    """The start request's env is malformed; the message says which variable and why."""


def check_kernel_env(env) -> dict[str, str]:
    """`env` as {name: value} strings, or BadKernelEnv. None means no variables."""
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise BadKernelEnv("'env' must be an object of variable names to string values")
    if len(env) > MAX_VARIABLES:
        raise BadKernelEnv(f"'env' has {len(env)} variables; at most {MAX_VARIABLES} are allowed")
    out: dict[str, str] = {}
    total = 0
    for name, value in env.items():
        shown = repr(name)[:80]
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise BadKernelEnv(
                f"env variable name {shown} is not valid: letters, digits and _, not starting "
                "with a digit (no '=', spaces or control characters)"
            )
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise BadKernelEnv(f"env variable {name} must be a string")
        value = str(value)
        if "\0" in value:
            raise BadKernelEnv(f"env variable {name} contains a NUL character")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise BadKernelEnv(f"env variable {name} is not valid Unicode text") from None
        if size > MAX_VALUE_BYTES:
            raise BadKernelEnv(
                f"env variable {name} is {size} bytes; at most {MAX_VALUE_BYTES} are allowed"
            )
        total += size + len(name) + 2
        out[name] = value
    if total > MAX_TOTAL_BYTES:
        raise BadKernelEnv(f"'env' is {total} bytes in all; at most {MAX_TOTAL_BYTES} are allowed")
    return out
