"""Checks for numeric gateway settings, used by the configurables' traitlets validators.

A bad value raises TraitError with a message naming `Class.setting`, the value and what is
allowed; the gateway then refuses to start (app.py) instead of misbehaving later.
"""

from __future__ import annotations

import math

from traitlets import TraitError


def at_least(obj, proposal, minimum: float, unit: str):
    """The proposed value when it is a finite number >= minimum, else TraitError."""
    value = proposal["value"]
    name = f"{type(obj).__name__}.{proposal['trait'].name}"
    if isinstance(value, float) and not math.isfinite(value):
        raise TraitError(f"{name} must be a finite number of {unit}, not {value}")
    if value < minimum:
        raise TraitError(f"{name} must be at least {minimum:g} {unit}, not {value}")
    return value


def positive(obj, proposal, unit: str):
    """The proposed value when it is a finite number > 0, else TraitError."""
    value = proposal["value"]
    name = f"{type(obj).__name__}.{proposal['trait'].name}"
    if isinstance(value, float) and not math.isfinite(value) or value <= 0:
        raise TraitError(f"{name} must be a number of {unit} greater than 0, not {value}")
    return value
