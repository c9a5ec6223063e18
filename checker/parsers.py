"""Pure parsers of what the lab's commands print. Tested on transcripts recorded from real runs.

Each takes the command's stdout (text) and returns plain data; none of them runs anything.
`PARSERS` maps the names that lab.yaml uses (`parse: docker_pull`) to them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Callable

from checker.units import parse_size

# ------------------------------------------------------------------------------------------------ sizes


def docker_size(text: str) -> float:
    """'72.3MB' -> 72_300_000.0, '0B' -> 0, '4.1kB' -> 4100 (Docker's decimal units)."""
    if not re.fullmatch(r"\s*[0-9.]+\s*[kKMGTP]?B\s*", text):
        raise ValueError(f"not a Docker size: {text!r}")
    return parse_size(text)


def du_size(text: str) -> float:
    """du -h sizes: '36K' -> 36864, '1.5M', '0' (binary units)."""
    if not re.fullmatch(r"\s*[0-9.]+\s*[KMGTP]?\s*", text, re.IGNORECASE):
        raise ValueError(f"not a du size: {text!r}")
    return parse_size(text.strip().upper())


# ------------------------------------------------------------------------------------------------ docker pull


@dataclass
class PullOutput:
    tag: str | None = None
    layers: dict[str, str] = field(default_factory=dict)  # layer id -> last status
    order: list[str] = field(default_factory=list)
    digest: str | None = None
    status: str | None = None

    def with_status(self, *statuses: str) -> list[str]:
        return [lid for lid in self.order if self.layers[lid] in statuses]


_PULL_LAYER = re.compile(r"^([0-9a-f]{12,64}): (.+)$")


def parse_pull(text: str) -> PullOutput:
    out = PullOutput()
    for raw in text.splitlines():
        # With a terminal, progress lines are redrawn with \r: the last one counts.
        line = raw.split("\r")[-1].strip()
        line = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line)
        if not line:
            continue
        if line.startswith("Digest:"):
            out.digest = line.split(":", 1)[1].strip()
        elif line.startswith("Status:"):
            out.status = line.split(":", 1)[1].strip()
        elif m := re.match(r"^(\S+): Pulling from (\S+)$", line):
            out.tag = m.group(1)
        elif m := _PULL_LAYER.match(line):
            lid, status = m.group(1), m.group(2)
            if status.startswith(("Downloading", "Extracting", "Waiting")):
                status = status.split()[0]
            if lid not in out.layers:
                out.order.append(lid)
            out.layers[lid] = status
    return out


# ------------------------------------------------------------------------------------------------ docker build


@dataclass
class BuildOutput:
    builder: str = "unknown"  # legacy | buildkit
    steps: list[tuple[int, int, str]] = field(default_factory=list)  # (n, total, instruction)
    image_id: str | None = None
    tags: list[str] = field(default_factory=list)


def parse_build(text: str) -> BuildOutput:
    out = BuildOutput()
    for raw in text.splitlines():
        line = raw.strip()
        if m := re.match(r"^Step (\d+)/(\d+) : (.*)$", line):
            out.builder = "legacy"
            out.steps.append((int(m.group(1)), int(m.group(2)), m.group(3)))
        elif m := re.match(r"^Successfully built ([0-9a-f]+)$", line):
            out.image_id = m.group(1)
        elif m := re.match(r"^Successfully tagged (\S+)$", line):
            out.tags.append(m.group(1))
        elif m := re.match(r"^#\d+ \[(?:\S+ )?(\d+)/(\d+)\] (.*)$", line):
            out.builder = "buildkit"
            step = (int(m.group(1)), int(m.group(2)), m.group(3))
            if step not in out.steps:
                out.steps.append(step)
        elif m := re.match(r"^#\d+ writing image (sha256:[0-9a-f]+)", line):
            out.builder = "buildkit"
            out.image_id = m.group(1)
        elif m := re.match(r"^#\d+ naming to (\S+)", line):
            out.tags.append(m.group(1))
        elif re.match(r"^#\d+ ", line) and out.builder == "unknown":
            out.builder = "buildkit"
    return out


# ------------------------------------------------------------------------------------------------ tables


def parse_table(text: str) -> list[dict[str, str]]:
    """A Docker CLI table (docker ps, image ls, history): header columns are 2+ spaces apart and every
    row's cells start where their header does (the CLI pads with a tabwriter)."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", header)]
    names = [header[s:e].strip() for s, e in zip(starts, starts[1:] + [len(header)])]
    rows = []
    for line in lines[1:]:
        cells = {}
        for i, name in enumerate(names):
            end = starts[i + 1] if i + 1 < len(starts) else len(line)
            cells[name] = line[starts[i]:end].strip() if starts[i] < len(line) else ""
        rows.append(cells)
    return rows


@dataclass(frozen=True)
class PsSize:
    writable: float
    virtual: float | None


def parse_ps_size(cell: str) -> PsSize:
    """The SIZE column of `docker ps -s`: '0B (virtual 72.3MB)'."""
    match = re.fullmatch(r"\s*(\S+)\s*(?:\(virtual\s+(\S+)\))?\s*", cell)
    if not match:
        raise ValueError(f"not a docker ps size: {cell!r}")
    virtual = docker_size(match.group(2)) if match.group(2) else None
    return PsSize(docker_size(match.group(1)), virtual)


# ------------------------------------------------------------------------------------------------ plain


def parse_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def parse_ls_long(text: str) -> list[str]:
    """`ls -l` (and `ls`): the names listed, without the `total N` line."""
    names = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or (fields[0] == "total" and len(fields) == 2):
            continue
        names.append(fields[-1] if len(fields) >= 9 else line.strip())
    return names


@dataclass(frozen=True)
class DuEntry:
    size: float
    path: str


def parse_du(text: str) -> list[DuEntry]:
    """`du -sh PATH...` (human sizes) or `du -s --block-size=1` (bytes): one entry per line."""
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        size, _, path = line.partition("\t")
        if not path:
            size, _, path = line.strip().partition(" ")
        entries.append(DuEntry(du_size(size), path.strip()))
    return entries


def parse_ifconfig(text: str) -> dict[str, dict]:
    """`ifconfig` (busybox's and net-tools'): each interface with its IPv4 address and mask, if any."""
    out: dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        if line and not line[0].isspace():
            current = line.split()[0].rstrip(":")
            out[current] = {"inet": None, "mask": None}
            rest = line
        elif current is None:
            continue
        else:
            rest = line
        inet = re.search(r"inet (?:addr:)?(\d+\.\d+\.\d+\.\d+)", rest)
        mask = re.search(r"(?:Mask:|netmask )(\d+\.\d+\.\d+\.\d+)", rest)
        if current is not None and inet:
            out[current]["inet"] = inet.group(1)
        if current is not None and mask:
            out[current]["mask"] = mask.group(1)
    return out


def parse_json(text: str):
    """One JSON document (`docker volume inspect NAME` prints an array)."""
    return json.loads(text)


def parse_json_lines(text: str, bad: Callable[[str], Exception] | None = None) -> list[dict]:
    """Output of `--format '{{json .}}'`: one JSON object per line. A line that is not JSON raises
    `bad(line)` (without it, json's own error)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            if bad is None:
                raise
            raise bad(line) from None
    return out


def parse_key_values(text: str) -> dict[str, str]:
    """Indented `Key: value` output (docker version, docker info) as flat paths:
    {"Server/Engine/Version": "20.10.24", "Server/Storage Driver": "overlay2", ...}."""
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []  # (indent, key) of the open sections
    for line in text.splitlines():
        if not line.strip() or ":" not in line:
            continue
        indent = len(line) - len(line.lstrip(" "))
        key, _, value = line.strip().partition(":")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = "/".join([k for _i, k in stack] + [key.strip()])
        out[path] = value.strip()
        stack.append((indent, key.strip()))
    return out


# Parsers that read stdout and stderr together (BuildKit writes its progress to stderr).
BOTH_STREAMS = {"docker_build"}

PARSERS = {
    "docker_pull": parse_pull,
    "docker_build": parse_build,
    "table": parse_table,
    "lines": parse_lines,
    "ifconfig": parse_ifconfig,
    "ls_long": parse_ls_long,
    "du": parse_du,
    "json": parse_json,
    "json_lines": parse_json_lines,
    "key_values": parse_key_values,
}
