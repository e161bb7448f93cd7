"""Kernel activity from the output journal's entries, without verifying every signature.

jupyter_server's MappingKernelManager watches each kernel's iopub on a subscription of its own
and fully deserializes every message, which HMAC-checks the whole message: for a 1 MB output
that is ~0.8 ms of gateway CPU per MB (measured: ~20% of the gateway's CPU while streaming
output). The journal already receives every iopub message with its header and parent header
unpacked, so activity is one more journal listener: the stock rules (`track_message_type`,
busy keeps the kernel active, execution_state from tracked parents, "starting" normalized to
"idle"), applied to what is already there; only a status message's small content is unpacked.
"""

from __future__ import annotations

from collections.abc import Callable

from .journal import load_part
from .limits import utcnow


def activity_listener(kernel_manager, kernel) -> Callable:
    """A journal listener keeping `kernel.last_activity` and `kernel.execution_state`."""
    tracked = kernel_manager.track_message_type
    unpack = kernel.session.unpack

    def on_entry(entry) -> None:
        if entry.channel != "iopub":
            return
        msg_type = entry.header.get("msg_type")
        parent_type = (entry.parent or {}).get("msg_type")
        if tracked(msg_type) or tracked(parent_type) or kernel.execution_state == "busy":
            kernel_manager.last_kernel_activity = kernel.last_activity = utcnow()
        if msg_type == "status":
            try:
                state = load_part(unpack, entry.parts[3]).get("execution_state")
            except Exception:  # noqa: BLE001 - a malformed status is not a state change
                return
            if tracked(parent_type):
                kernel.execution_state = state
            elif kernel.execution_state == "starting" and state != "starting":
                kernel.execution_state = "idle"  # as stock: normalize after starting

    return on_entry
