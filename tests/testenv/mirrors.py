"""The Debian mirror the test environment builds from: the one this machine's own apt sources name.

`CHECK_LAB_DEBIAN_MIRROR` overrides it. Standard library only (tests/testenv/boxes/build_box.py uses it too).
"""

from __future__ import annotations

import os
from pathlib import Path

APT = Path("/etc/apt")


def _uris(text: str, deb822: bool) -> list[str]:
    """The URIs of the `deb` entries of one sources file (deb822 `.sources`, or one-line `.list`)."""
    found = []
    if deb822:
        for stanza in text.split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if line.strip() and not line.startswith(("#", " ", "\t")) and ":" in line:
                    key, value = line.split(":", 1)
                    fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes").lower() != "no":
                found += fields.get("uris", "").split()
    else:
        for line in text.splitlines():
            words = [w for w in line.split("#", 1)[0].split() if not w.startswith("[")]
            if words[:1] == ["deb"] and len(words) >= 2:
                found.append(words[1])
    return found


def debian_mirror(apt: Path = APT) -> str:
    """The first Debian archive (not its security archive) in the machine's apt sources."""
    if os.environ.get("CHECK_LAB_DEBIAN_MIRROR"):
        return os.environ["CHECK_LAB_DEBIAN_MIRROR"]
    files = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list")),
             *sorted((apt / "sources.list.d").glob("*.sources"))]
    for path in files:
        if path.is_file():
            for uri in _uris(path.read_text(errors="replace"), path.suffix == ".sources"):
                if uri.rstrip("/").endswith("/debian"):
                    return uri.rstrip("/")
    raise SystemExit("no Debian archive in this machine's apt sources (/etc/apt): set CHECK_LAB_DEBIAN_MIRROR")
