"""The test environment's stand-in download server: HTTPS on the test bridge, under the names of the hosts the
labs' Dockerfiles fetch from (lab 17: `wget https://…/openjdk-9.0.4_linux-x64_bin.tar.gz`), answered by the test
name server, with a certificate of the test CA (the ubuntu:latest stand-in trusts it). What it serves are test
fixtures: JDK tarballs made of Debian's OpenJDK 17 (tests/testenv/env.py: ensure_downloads).

    python -m tests.testenv.downloads ROOT CERT KEY ADDRESS   # serves ROOT/HOST/PATH for https://HOST/PATH
"""

from __future__ import annotations

import http.server
import ssl
import sys
from functools import partial
from pathlib import Path


class ByHost(http.server.SimpleHTTPRequestHandler):
    """ROOT/HOST/PATH for https://HOST/PATH: one server for every host it stands in for."""

    def translate_path(self, path: str) -> str:
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        if not host or "/" in host or host.startswith("."):
            return str(Path(self.directory) / "-")
        return str(Path(self.directory) / host) + super().translate_path(path)[len(self.directory):]

    def list_directory(self, path):  # a file server, not a folder browser
        self.send_error(404)
        return None


def main(argv: list[str]) -> int:
    root, cert, key, address = argv
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer((address, 443), partial(ByHost, directory=root))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
