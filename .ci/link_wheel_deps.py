"""Expose the wheel's runtime dependencies, and nothing else, from .venv to a fresh venv.

Why: a second install of torch and its CUDA libraries costs ~6 GB of disk and a minute; on
a machine with little free disk that alone failed CI. Linking only the closure of the
wheel's own `Requires-Dist` (extras excluded) keeps what the smoke test is for: pip still
resolves the wheel's declared requirements against what it finds (and installs anything
missing), and an import of a package the wheel forgot to declare still fails, because dev
and bench extras (pytest, playwright, cleanlab, ...) are not linked.

Usage (run with .venv's python): link_wheel_deps.py WHEEL DEPS_DIR TARGET_SITE_PACKAGES
Writes one symlink per top-level entry into DEPS_DIR and a .pth in TARGET_SITE_PACKAGES
that puts DEPS_DIR on the fresh venv's sys.path.
"""

from __future__ import annotations

import sys
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def wheel_requirements(wheel: Path) -> list[Requirement]:
    """The wheel's `Requires-Dist` entries that apply without extras."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(name).decode()
    reqs = [
        Requirement(line.split(":", 1)[1].strip())
        for line in text.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def dependency_closure(roots: list[Requirement]) -> dict[str, metadata.Distribution]:
    """Installed distributions reachable from `roots`, honouring requested extras."""
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, str]] = set()
    todo = [(r, "") for r in roots]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        key = canonicalize_name(req.name)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # not in .venv: pip installs it into the fresh venv
        found[key] = dist
        for want in [""] + sorted(req.extras):
            if (key, want) in seen:
                continue
            seen.add((key, want))
            todo.extend((Requirement(r), want) for r in dist.requires or [])
    return found


def top_level_entries(dist: metadata.Distribution) -> set[str]:
    """Names directly in site-packages that `dist` installed (packages, modules, dist-info)."""
    if dist.files is None:
        sys.exit(f"link_wheel_deps: {dist.metadata['Name']} has no RECORD; reinstall it in .venv")
    return {f.parts[0] for f in dist.files if f.parts and f.parts[0] != ".."}


def main(wheel: str, deps_dir: str, target_site: str) -> None:
    """Link the closure into `deps_dir` and point the fresh venv at it with a .pth."""
    site = Path(metadata.distribution("pip").locate_file("")).resolve()
    deps = Path(deps_dir)
    deps.mkdir(parents=True)
    closure = dependency_closure(wheel_requirements(Path(wheel)))
    entries = set().union(*(top_level_entries(d) for d in closure.values()))
    entries.discard("__pycache__")
    for entry in sorted(entries):
        if (site / entry).exists():
            (deps / entry).symlink_to(site / entry)
    (Path(target_site) / "fercleaner-smoke-deps.pth").write_text(f"{deps.resolve()}\n")
    print(f"  linked {len(closure)} distributions ({len(entries)} entries) from {site}")


if __name__ == "__main__":
    main(*sys.argv[1:])
