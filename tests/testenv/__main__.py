"""The offline test environment: a Docker engine on the host, a registry mirror, container-VM images.

    python3 -m tests.testenv start    # start everything (idempotent) and leave it running
    python3 -m tests.testenv status
    python3 -m tests.testenv env      # the settings, as shell `export` lines
    python3 -m tests.testenv stop     # stop what `start` started (by PID), keep the caches

Standard library only: it runs before any virtualenv exists. Root, no systemd.
"""

from __future__ import annotations

import sys

from . import env


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "status"
    if cmd == "start":
        settings = env.start()
        print(env.describe(settings))
    elif cmd == "stop":
        env.stop()
    elif cmd == "status":
        print(env.status_text())
    elif cmd == "env":
        print(env.export_lines(env.load_settings()))
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except env.TestEnvError as exc:
        print(f"testenv: {exc}", file=sys.stderr)
        sys.exit(1)
