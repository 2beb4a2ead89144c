"""Runs inside the zipapp before kubectl-gwdup starts: removes older extractions.

shiv extracts each build to <root>/kubectl-gwdup_<build id>; without this, every upgrade
would leave one more copy of the dependencies in ~/.shiv. The scan runs once per extraction
(a marker file records it), so later starts pay one stat. Only directories extracted before
the current one are removed: a newer build in use elsewhere is left alone.
"""
import shutil
from pathlib import Path

current = Path(site_packages).parent  # noqa: F821 - injected by shiv's bootstrap
marker = current / ".gwdup-cleaned"
if not marker.exists():
    born = current.stat().st_mtime
    for old in current.parent.glob("kubectl-gwdup_*"):
        try:
            if old != current and old.is_dir() and old.stat().st_mtime < born:
                shutil.rmtree(old, ignore_errors=True)
                lock = old.parent / f".{old.name}_lock"
                if lock.exists():
                    lock.unlink()
        except OSError:
            pass
    try:
        marker.touch()
    except OSError:
        pass
