"""Secret values and which notebooks may read them, in the 0600 state folder."""

from __future__ import annotations

import re

from ..state import AccelState

SECRETS_FILE = "secrets.json"
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
MAX_VALUE_BYTES = 64 * 1024


class BadSecret(ValueError):
    """A malformed name, value or notebook path; the message says which."""


def check_name(name) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise BadSecret(
            f"secret name {str(name)[:80]!r} is not valid: letters, digits, '_', '.', '-', "
            "starting with a letter or '_', at most 128 characters"
        )
    return name


def check_value(value) -> str:
    if not isinstance(value, str):
        raise BadSecret("'value' must be a string")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
        raise BadSecret(f"'value' is over {MAX_VALUE_BYTES} bytes")
    return value


def check_path(path) -> str:
    if not isinstance(path, str) or not path.strip() or "\0" in path or len(path) > 4096:
        raise BadSecret("'path' must be a notebook path (a non-empty string)")
    return path.strip("/")


class SecretStore:
    """{name: {value, notebooks: [path]}}, written atomically with mode 0600."""

    def __init__(self, state: AccelState):
        self.state = state
        self._data: dict[str, dict] = {}
        raw = state.read_json(SECRETS_FILE, {})
        if isinstance(raw, dict):
            for name, rec in raw.items():
                if isinstance(rec, dict) and isinstance(rec.get("value"), str):
                    notebooks = [p for p in rec.get("notebooks") or [] if isinstance(p, str)]
                    self._data[name] = {"value": rec["value"], "notebooks": notebooks}

    def _save(self) -> None:
        self.state.write_json(SECRETS_FILE, self._data)

    def listing(self) -> list[dict]:
        """Names and grants, never values."""
        return [
            {"name": name, "notebooks": sorted(rec["notebooks"])}
            for name, rec in sorted(self._data.items())
        ]

    def model(self, name: str) -> dict | None:
        rec = self._data.get(name)
        return None if rec is None else {"name": name, "notebooks": sorted(rec["notebooks"])}

    def put(self, name: str, value: str, notebooks=None) -> bool:
        """Set a value (grants kept unless `notebooks` is given); True when it is new."""
        check_name(name)
        check_value(value)
        paths = None
        if notebooks is not None:
            if not isinstance(notebooks, list):
                raise BadSecret("'notebooks' must be a list of notebook paths")
            paths = sorted({check_path(p) for p in notebooks})
        rec = self._data.get(name)
        new = rec is None
        self._data[name] = {
            "value": value,
            "notebooks": paths if paths is not None else (rec["notebooks"] if rec else []),
        }
        self._save()
        return new

    def delete(self, name: str) -> bool:
        if self._data.pop(name, None) is None:
            return False
        self._save()
        return True

    def has(self, name: str) -> bool:
        return name in self._data

    def granted(self, name: str, path: str) -> bool:
        rec = self._data.get(name)
        return rec is not None and path.strip("/") in rec["notebooks"]

    def grant(self, name: str, path: str) -> None:
        rec = self._data[name]
        path = check_path(path)
        if path not in rec["notebooks"]:
            rec["notebooks"].append(path)
            self._save()

    def revoke(self, name: str, path: str) -> bool:
        rec = self._data.get(name)
        path = check_path(path)
        if rec is None or path not in rec["notebooks"]:
            return False
        rec["notebooks"].remove(path)
        self._save()
        return True

    def value(self, name: str) -> str:
        return self._data[name]["value"]
