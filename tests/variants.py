"""Broken versions of lab 07, each making some of its claims false on a real engine.

Shared by the integration tests (negative cases) and the transcript recorder, so the unit tests
replay exactly what the integration tests exercise.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB07 = REPO / "labs" / "07-FS_layering"

# name -> (Dockerfile-my-image, claims that must fail)
VARIANTS: dict[str, tuple[str, set[str]]] = {
    # Built from the OS image instead of my-base-image: the base's layers are not reused.
    "not-from-base": (
        "FROM ubuntu:18.04\nCOPY hello.sh /app/hello.sh\nCMD /app/hello.sh\n",
        {"base-layers-shared", "cmd-layer-empty", "image-sizes-equal"},
    ),
    # A RUN before the CMD: a new filesystem layer, a bigger image.
    "extra-run-layer": (
        "FROM my-base-image:1.0\nRUN echo built > /app/built.txt\nCMD /app/hello.sh\n",
        {"cmd-layer-empty", "image-sizes-equal"},
    ),
    # An entrypoint that ends at once: the containers do not keep running (and `--rm` removes them, so their
    # sizes, directories and disk use cannot be measured: not judged).
    "exits-at-once": (
        'FROM my-base-image:1.0\nENTRYPOINT ["true"]\nCMD /app/hello.sh\n',
        {"five-containers-running", "cmd-layer-empty", "container-writable-layer-small", "container-dirs-small",
         "disk-total-formula"},
    ),
    # Containers that write 2 MB into their writable layer and print 1.5 MB to their log.
    "noisy-containers": (
        "FROM my-base-image:1.0\n"
        'ENTRYPOINT ["/bin/sh", "-c", "head -c 2000000 /dev/zero > /var/tmp/junk; '
        "head -c 1500000 /dev/zero | tr '\\\\0' x; echo; exec \\\"$@\\\"\", \"--\"]\n"
        "CMD /app/hello.sh\n",
        {"container-writable-layer-small", "container-dirs-small", "cmd-layer-empty"},
    ),
}


def make_variant(name: str, dest: Path) -> Path:
    """A copy of lab 07 in `dest` with the variant's Dockerfile-my-image; returns the lab folder."""
    dockerfile, _ = VARIANTS[name]
    folder = dest / f"07-{name}"
    shutil.copytree(LAB07, folder)
    (folder / "course" / "Dockerfile-my-image").write_text(dockerfile)
    return folder
