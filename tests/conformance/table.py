"""Rewrites one scenario x target table of docs/conformance.md between its markers."""

from __future__ import annotations

from pathlib import Path


def write_table(doc: Path, name: str, results: dict, columns) -> None:
    """results: (row, protocol, column) -> verdict; the table goes between
    `<!-- table:NAME -->` and `<!-- /table:NAME -->`."""
    rows = list(dict.fromkeys((r, p) for r, p, _ in results))
    lines = ["| scenario | protocol | " + " | ".join(columns) + " |"]
    lines.append("|" + "---|" * (len(columns) + 2))
    for row, protocol in rows:
        cells = [results.get((row, protocol, c), "not run") for c in columns]
        lines.append(f"| {row} | {protocol} | " + " | ".join(cells) + " |")
    text = doc.read_text()
    start, end = f"<!-- table:{name} -->", f"<!-- /table:{name} -->"
    a, b = text.index(start) + len(start), text.index(end)
    doc.write_text(text[:a] + "\n" + "\n".join(lines) + "\n" + text[b:])
