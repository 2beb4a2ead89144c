"""Puts a version check in front of a shiv zipapp's __main__.py, at build time.

shiv's bootstrap and kubectl-gwdup itself are Python 3.9+ code, so an older python3 on PATH
died with a SyntaxError from inside the archive. The check is written in syntax every Python
from 2.7 on reads, runs before anything else in the archive, and prints one line naming the
Python it needs and the one it found. The archive is rewritten entry by entry with each entry's
own date and compression, so the build stays reproducible.

Usage: python_gate.py ZIPAPP
"""
import os
import sys
import zipfile

GATE = b'''# -*- coding: utf-8 -*-
import sys
if sys.version_info < (3, 9):
    sys.stderr.write("error: kubectl-gwdup needs Python 3.9 or newer; %s is Python %s\\n"
                     % (sys.executable or "python3", sys.version.split()[0]))
    sys.exit(1)
'''


def main(path: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        entries = [(info, z.read(info)) for info in infos]
    start = min(info.header_offset for info in infos)
    prefix = data[:start]  # the shebang line
    if not prefix.startswith(b"#!"):
        raise SystemExit(f"{path}: no shebang before the archive")
    tmp = path + ".gate"
    with open(tmp, "wb") as out:
        out.write(prefix)
        with zipfile.ZipFile(out, "w") as z:
            for info, body in entries:
                if info.filename == "__main__.py":
                    if body.startswith(GATE):
                        raise SystemExit(f"{path}: already gated")
                    body = GATE + body
                z.writestr(info, body, compress_type=info.compress_type)
    os.chmod(tmp, os.stat(path).st_mode)
    os.replace(tmp, path)


if __name__ == "__main__":
    main(sys.argv[1])
