"""Sizes: one table of units for everything the checker reads or writes.

Docker prints decimal units (go-units HumanSize: `4.1kB`, `72.3MB`); `du -h` and `ls -h` print binary
ones as single letters (`36K`, `1.5M`); lab.yaml may say either, or IEC names (`64KiB`, `1MiB`).
"""

from __future__ import annotations

import re

UNITS: dict[str, int] = {
    "": 1, "B": 1,
    # decimal (Docker, SI)
    "kB": 1000, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4, "PB": 1000**5,
    # binary (IEC)
    "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4, "PiB": 1024**5,
    # binary, as du -h and ls -h print them
    "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5,
}
_SIZE = re.compile(r"^\s*(-?[0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str | int | float) -> float:
    """'72.3MB' -> 72_300_000, '36K' -> 36_864, '64KiB' -> 65_536, 4096 -> 4096, '0B' -> 0."""
    if isinstance(text, bool):
        raise ValueError(f"not a size: {text!r}")
    if isinstance(text, (int, float)):
        return float(text)
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"not a size: {text!r}")
    number, unit = float(match.group(1)), match.group(2)
    if unit not in UNITS:
        # `kb`, `mb`: the decimal unit whatever its case; anything else is not a size.
        upper = unit.upper()
        if upper in UNITS and upper.endswith("B"):
            unit = upper
        else:
            raise ValueError(f"not a size: {text!r} (unknown unit {unit!r})")
    return number * UNITS[unit]


def size_bytes(text: str | int | float) -> int:
    return int(parse_size(text))


def human(n: float | None) -> str:
    """Bytes for people, in Docker's decimal units."""
    if n is None:
        return "?"
    for unit in ("GB", "MB", "kB"):
        if abs(n) >= UNITS[unit]:
            return f"{n / UNITS[unit]:.3g}{unit}"
    return f"{n:.0f}B"


def docker_memory_bytes(text: str | int) -> int:
    """A memory size as `docker run --memory` reads it: binary whatever the case, `b` optional
    ('500m', '512MB', '1g' -> 1 GiB); a bare number is bytes."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)b?\s*", str(text), re.I)
    if not match:
        raise ValueError(f"not a memory size: {text!r}")
    return int(float(match.group(1)) * 1024 ** " kmgtp".index(match.group(2).lower() or " "))
