"""What of a notebook's folder goes to the runtime: ignore rules, secrets, links, the size cap."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

# Never worth sending: VCS data, dependency trees, environments, caches, checkpoints.
DEFAULT_IGNORE = [
    ".git/",
    ".hg/",
    ".svn/",
    "node_modules/",
    ".venv/",
    "venv/",
    ".tox/",
    "__pycache__/",
    ".ipynb_checkpoints/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".DS_Store",
    "*.pyc",
]
# Folder names pruned when walking either side (cheap, before the pattern rules).
PRUNE_DIRS = {
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    ".venv",
    "venv",
    ".tox",
    "__pycache__",
    ".ipynb_checkpoints",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
}
# Files that look like credentials stay behind unless the user asks for them.
SECRET_PATTERNS = [
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_*",
    ".netrc",
    ".pgpass",
    "credentials",
    ".aws/",
    ".ssh/",
]
CONFLICT_TAG = ".conflict-"
KEEP, IGNORED, SECRET = 0, 1, 2  # what the patterns say of a path


@dataclass
class Selection:
    """The files that go ({rel: (size, mtime_ns)}) and what was left behind, by reason."""

    files: dict[str, tuple[int, int]] = field(default_factory=dict)
    ignored: int = 0
    secrets: list[str] = field(default_factory=list)
    links_out: list[str] = field(default_factory=list)
    over_cap: list[str] = field(default_factory=list)
    over_cap_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return sum(size for size, _ in self.files.values())


class SyncRules:
    """Rules for one synced folder: `root` is the server's root, `folder` a folder inside it."""

    def __init__(
        self,
        root: str | Path,
        folder: str,
        *,
        max_bytes: int,
        include_secrets: bool = False,
        extra_ignore: list[str] | None = None,
    ):
        self.root = Path(root).resolve()
        self.folder = folder.strip("/")
        self.base = (self.root / self.folder).resolve() if self.folder else self.root
        if self.base != self.root and self.root not in self.base.parents:
            raise ValueError(f"folder {folder!r} is outside the server's root")
        self.max_bytes = max_bytes
        self.extra_ignore = list(extra_ignore or [])
        self.secrets = (
            None if include_secrets else pathspec.GitIgnoreSpec.from_lines(SECRET_PATTERNS)
        )
        self.gitignore_stat: tuple[int, int] | None = (-1, -1)  # not read yet
        self.verdicts: dict[str, int] = {}  # rel -> KEEP/IGNORED/SECRET: the patterns' cost once
        self.reload_if_changed()

    def reload_if_changed(self) -> None:
        """Read the folder's .gitignore again when it changed since the patterns were built."""
        try:
            st = (self.base / ".gitignore").stat()
            now: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        except OSError:
            now = None
        if now == self.gitignore_stat:
            return
        patterns = list(DEFAULT_IGNORE) + self.extra_ignore
        if now is not None:
            patterns += (self.base / ".gitignore").read_text(errors="replace").splitlines()
        self.ignore = pathspec.GitIgnoreSpec.from_lines(patterns)
        self.gitignore_stat = now
        self.verdicts = {}

    def verdict(self, rel: str) -> int:
        v = self.verdicts.get(rel)
        if v is None:
            if self.ignore.match_file(rel) or CONFLICT_TAG in rel.rsplit("/", 1)[-1]:
                v = IGNORED
            elif self.secrets is not None and self.secrets.match_file(rel):
                v = SECRET
            else:
                v = KEEP
            self.verdicts[rel] = v
        return v

    def ignored(self, rel: str) -> bool:
        return self.verdict(rel) == IGNORED

    def is_secret(self, rel: str) -> bool:
        return self.verdict(rel) == SECRET

    def inside_root(self, path: Path) -> bool:
        real = path.resolve()
        return real == self.root or self.root in real.parents

    def select(self) -> Selection:
        """Walk the folder (links into the root followed for files only) and apply the rules.
        Blocking (one stat a file); file sync runs it in a thread."""
        self.reload_if_changed()
        sel = Selection()
        candidates: list[tuple[str, int, int]] = []
        pending = [(str(self.base), "")]
        while pending:
            path, prefix = pending.pop()
            try:
                entries = list(os.scandir(path))
            except OSError:
                continue
            for entry in entries:
                rel = prefix + entry.name
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    continue
                if is_dir:
                    if (
                        entry.name in PRUNE_DIRS
                        or self.ignored(rel + "/")
                        or is_virtualenv(Path(entry.path))
                    ):
                        sel.ignored += 1
                    elif entry.is_symlink():
                        sel.links_out.append(rel + "/")  # folder links are never followed
                    elif self.is_secret(rel + "/"):
                        sel.secrets.append(rel + "/")
                    else:
                        pending.append((entry.path, rel + "/"))
                    continue
                verdict = self.verdict(rel)
                if verdict == IGNORED:
                    sel.ignored += 1
                    continue
                if verdict == SECRET:
                    sel.secrets.append(rel)
                    continue
                if entry.is_symlink() and not self.inside_root(Path(entry.path)):
                    sel.links_out.append(rel)
                    continue
                try:
                    st = entry.stat()  # follows a link into the root
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    candidates.append((rel, st.st_size, st.st_mtime_ns))
        # Under the cap, small files first: code and small data go, the largest stay behind.
        total = 0
        for rel, size, mtime in sorted(candidates, key=lambda c: (c[1], c[0])):
            if total + size > self.max_bytes:
                sel.over_cap.append(rel)
                sel.over_cap_bytes += size
                continue
            total += size
            sel.files[rel] = (size, mtime)
        return sel

    def local_path(self, rel: str) -> Path:
        return self.base.joinpath(*rel.split("/"))


def is_virtualenv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file()


def conflict_name(rel: str, runtime: str) -> str:
    """`dir/out.png` -> `dir/out.conflict-gpu-box.png`: the runtime's copy beside the local one."""
    head, _, name = rel.rpartition("/")
    stem, dot, ext = name.partition(".") if not name.startswith(".") else (name, "", "")
    new = f"{stem}{CONFLICT_TAG}{runtime}{dot}{ext}"
    return f"{head}/{new}" if head else new
