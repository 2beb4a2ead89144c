"""Entry point. The CLI is imported inside main() so Ctrl-C during start-up still maps to 130."""
from __future__ import annotations

import sys


def main() -> int:
    try:
        from .cli.main import main as cli_main
    except KeyboardInterrupt:
        return 130
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
