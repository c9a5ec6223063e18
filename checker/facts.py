"""Facts: what the run observed, gathered once; claims read them and never query the target.

Typed views of Docker's structured data (`docker info`, `docker image inspect`, `docker container
inspect -s`, `docker history --format '{{json .}}'`) plus each step's parsed output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from checker.records import Engine, StepFact


class MissingFact(Exception):
    """A claim needs a fact the run could not gather; the claim is then not judged (verdict `error`).
    `what_to_do` tells the student how to give the checker the evidence (e.g. run --observe earlier)."""

    def __init__(self, message: str, what_to_do: str | None = None):
        super().__init__(message)
        self.what_to_do = what_to_do


class NotApplicable(Exception):
    """The claim cannot hold on this machine whatever the student does (its kernel lacks what the claim is
    about): verdict n/a, with the reason, no failure."""


@dataclass(frozen=True)
class Image:
    id: str
    tags: tuple[str, ...]
    layers: tuple[str, ...]
    size: int
    graph_driver: str
    graph_data: dict
    cmd: tuple[str, ...] | None
    created: str
    digests: tuple[str, ...] = ()  # RepoDigests: set when the image came from a registry
    labels: dict = field(default_factory=dict)  # Config.Labels (e.g. the student's mark, check-lab.student)

    @classmethod
    def from_inspect(cls, data: dict) -> "Image":
        graph = data.get("GraphDriver") or {}
        cmd = (data.get("Config") or {}).get("Cmd")
        return cls(
            id=data["Id"],
            tags=tuple(data.get("RepoTags") or ()),
            layers=tuple((data.get("RootFS") or {}).get("Layers") or ()),
            size=int(data.get("Size") or 0),
            graph_driver=str(graph.get("Name", "")),
            graph_data=dict(graph.get("Data") or {}),
            cmd=tuple(cmd) if cmd else None,
            created=str(data.get("Created", "")),
            digests=tuple(data.get("RepoDigests") or ()),
            labels=dict((data.get("Config") or {}).get("Labels") or {}),
        )

    def layer_dirs(self) -> list[str]:
        """The storage driver's directory of each layer, bottom first (overlay2: LowerDir…, UpperDir)."""
        if self.graph_driver != "overlay2":
            return []
        paths = [p for p in (self.graph_data.get("LowerDir") or "").split(":") if p]
        paths.reverse()  # LowerDir lists the top-most lower layer first
        if self.graph_data.get("UpperDir"):
            paths.append(self.graph_data["UpperDir"])
        return [os.path.basename(os.path.dirname(p)) for p in paths]


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    image_id: str
    image_ref: str
    running: bool
    status: str
    exit_code: int | None
    size_rw: int | None
    size_root_fs: int | None
    created: str
    started_at: str = ""  # "0001-01-01T00:00:00Z" if it never started
    network_mode: str = ""
    networks: dict = field(default_factory=dict)  # network name -> IPv4 address
    mounts: tuple = ()  # ({type, source (a volume's name, a bind's path), destination, rw}, …)
    nano_cpus: int = 0  # --cpus × 10⁹
    memory: int = 0  # --memory, in bytes

    @property
    def ever_started(self) -> bool:
        return bool(self.started_at) and not self.started_at.startswith("0001-")

    @classmethod
    def from_inspect(cls, data: dict) -> "Container":
        state = data.get("State") or {}
        host = data.get("HostConfig") or {}
        return cls(
            id=data["Id"],
            name=str(data.get("Name", "")).lstrip("/"),
            image_id=str(data.get("Image", "")),
            image_ref=str((data.get("Config") or {}).get("Image", "")),
            # Podman's "stopping": the stop signal is sent, its processes still run (Docker says Running then)
            running=bool(state.get("Running")) or state.get("Status") == "stopping",
            status=str(state.get("Status", "")),
            exit_code=state.get("ExitCode"),
            size_rw=data.get("SizeRw"),
            size_root_fs=data.get("SizeRootFs"),
            created=str(data.get("Created", "")),
            started_at=str(state.get("StartedAt", "")),
            network_mode=str(host.get("NetworkMode", "")),
            networks={name: str((net or {}).get("IPAddress", "")) for name, net in
                      ((data.get("NetworkSettings") or {}).get("Networks") or {}).items()},
            # a volume by its name (its Source is its folder under the engine's root), a bind by its path
            mounts=tuple({"type": str(m.get("Type", "")),
                          "source": str((m.get("Name") if m.get("Type") == "volume" else None) or m.get("Source", "")),
                          "destination": str(m.get("Destination", "")), "rw": bool(m.get("RW", True))}
                         for m in data.get("Mounts") or []) + _tmpfs(data),
            nano_cpus=int(host.get("NanoCpus") or 0),
            memory=int(host.get("Memory") or 0),
        )


def _tmpfs(data: dict) -> tuple[dict, ...]:
    """Tmpfs mounts the engine lists apart (Docker's `--tmpfs PATH`, Podman's every tmpfs): path -> options."""
    listed = {str(m.get("Destination", "")) for m in data.get("Mounts") or []}
    return tuple({"type": "tmpfs", "source": "", "destination": str(path), "rw": "ro" not in str(options).split(",")}
                 for path, options in ((data.get("HostConfig") or {}).get("Tmpfs") or {}).items() if path not in listed)


@dataclass(frozen=True)
class HistoryRow:
    id: str
    created_by: str
    size: int
    created_at: str
    comment: str = ""

    @classmethod
    def from_json(cls, data: dict) -> "HistoryRow":
        # Docker's keys; Podman's `history --format '{{json .}}'` says id, size (a number) and created.
        size = data.get("Size", data.get("size", "0"))
        return cls(id=str(data.get("ID", data.get("id", ""))), created_by=str(data.get("CreatedBy", "")),
                   size=int(size) if str(size).isdigit() else 0,
                   created_at=str(data.get("CreatedAt", data.get("created", ""))),
                   comment=str(data.get("Comment", data.get("comment", ""))))

    @property
    def missing_id(self) -> bool:
        return self.id in ("<missing>", "")


@dataclass(frozen=True)
class LayerStore:
    """Where the engine keeps image layers: the containerd overlayfs snapshotter's committed snapshots
    (by chain ID) and its snapshot directories."""

    snapshots: dict  # chain id -> kind (Committed, Active, View)
    directories: tuple[str, ...]
    path: str


EVENTS_KEPT = 256  # the engine keeps its last 256 events in memory (moby's events buffer)


@dataclass(frozen=True)
class ContainerEvent:
    name: str
    action: str  # create, start, die, kill, stop, destroy, …
    image: str
    time: float
    exit_code: int | None = None
    id: str = ""


@dataclass(frozen=True)
class ContainerEvents:
    """What the engine's event log still says about containers (`docker events --until now`): which were
    created from which image, started, stopped and removed, also after they are gone (`--rm`)."""

    events: tuple[ContainerEvent, ...]
    since: float | None = None  # None: everything the engine still holds
    truncated: bool = False  # the log was full: older events may have been dropped
    oldest: float | None = None  # the time of the oldest event it still holds (of any kind)

    def since_made(self, made: float) -> "ContainerEvents":
        """Only what happened from `made` on (older events are of earlier containers of the same names); a full
        log whose oldest event is older than that still holds everything since: not truncated for it."""
        kept = tuple(e for e in self.events if e.time >= made)
        truncated = self.truncated and (self.oldest is None or self.oldest > made)
        return ContainerEvents(kept, self.since, truncated, self.oldest)

    def of(self, name: str) -> list[ContainerEvent]:
        """The events of the latest container of that name (from its last `create` on)."""
        mine = [e for e in self.events if e.name == name]
        creates = [i for i, e in enumerate(mine) if e.action == "create"]
        return mine[creates[-1]:] if creates else mine

    def started(self, name: str) -> ContainerEvent | None:
        return next((e for e in self.of(name) if e.action == "start"), None)

    def died(self, name: str) -> ContainerEvent | None:
        return next((e for e in reversed(self.of(name)) if e.action == "die"), None)

    def destroyed(self, name: str) -> bool:
        return any(e.action == "destroy" for e in self.of(name))

    def image_of(self, name: str) -> str | None:
        return next((e.image for e in self.of(name) if e.action == "create" and e.image), None)

    def running(self, name: str) -> bool:
        """Started, and no die since (as far as the log goes)."""
        last = [e for e in self.of(name) if e.action in ("start", "die")]
        return bool(last) and last[-1].action == "start"


def chain_ids(diff_ids: tuple[str, ...] | list[str]) -> list[str]:
    """OCI chain IDs of a layer stack: how snapshotters name the snapshot of each layer."""
    import hashlib

    chain: list[str] = []
    for diff in diff_ids:
        if not chain:
            chain.append(diff)
        else:
            chain.append("sha256:" + hashlib.sha256(f"{chain[-1]} {diff}".encode()).hexdigest())
    return chain


def not_run_here(fact: StepFact) -> MissingFact:
    """Why a `skipped` step (observe mode) gives no evidence: it changes the machine, or what its observe
    form reads was not found on the machine."""
    if fact.error:
        return MissingFact(f"step {fact.step_id!r}: {fact.error}",
                           what_to_do="leave what the lab made until the check has run, or follow the lab with "
                                      "--watch while you do it")
    return MissingFact(f"step {fact.step_id!r} changes the machine, so observe mode did not run it",
                       what_to_do="it rests on what that command printed, which only a run shows: check-lab "
                                  "without --observe runs the lab and judges it")


@dataclass
class Facts:
    engine: Engine | None = None
    values: dict = field(default_factory=dict)
    resources: dict[str, list[str]] = field(default_factory=dict)  # the lab's names, expanded
    files_total: int = 0  # bytes of the lab files uploaded (the build context)
    observe: bool = False  # observe mode: no lab step changed anything; facts come from the state left
    present_before: set = field(default_factory=set)  # images the lab pulls that were on the engine before
    steps: dict[str, StepFact] = field(default_factory=dict)
    gathered: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    # Where each gathered fact came from: name -> {command, exit_status, excerpt, step} (the report's `sources`).
    sources: dict[str, dict] = field(default_factory=dict)
    # The names of the steps and facts read since `reading()` began: the evidence of the claim being judged.
    read: set[str] | None = None

    @property
    def podman(self) -> Engine | None:
        """The engine when it is Podman behind the course's `docker` (podman-docker), else None."""
        return self.engine if self.engine is not None and self.engine.podman else None

    def lacking(self, needs) -> str:
        """Why the engine cannot do what NEEDS names ("" when it can, or when the engine is not known)."""
        return self.engine.lacking(needs) if self.engine is not None else ""

    def forget_looks(self) -> None:
        """Before observe mode looks again: what an earlier look gathered goes, the engine stays."""
        self.gathered = {key: value for key, value in self.gathered.items() if key == "engine"}
        self.sources = {key: value for key, value in self.sources.items() if key == "engine"}
        self.problems = {}

    def reading(self) -> set[str]:
        """Start noting what is read (one claim's evidence); returns the set the reads go into."""
        self.read = set()
        return self.read

    def _note(self, name: str) -> None:
        if self.read is not None:
            self.read.add(name)

    def step(self, step_id: str) -> StepFact:
        """A step's fact; in observe mode a step that changes things is `skipped` (claims judge from state)."""
        self._note(step_id)
        fact = self.steps.get(step_id)
        if fact is None or fact.status == "not-run":
            raise MissingFact(f"step {step_id!r} did not run")
        if fact.status == "timed-out":
            raise MissingFact(f"step {step_id!r} did not finish: {fact.error}")
        if fact.unreadable:
            raise MissingFact(f"the output of step {step_id!r} could not be read: {fact.error}")
        return fact

    @staticmethod
    def output(fact: StepFact):
        """A step's parsed output, for checks that can only read it there."""
        if fact.status == "skipped":
            raise not_run_here(fact)
        return fact.parsed

    def peek(self, name: str) -> Any:
        """A gathered fact, or None when it was not gathered (for checks that can do without it)."""
        self._note(name)
        return self.gathered.get(name)

    def peek_step(self, step_id: str) -> StepFact | None:
        """A step's record as it is, or None (for checks that say themselves what its absence means)."""
        self._note(step_id)
        return self.steps.get(step_id)

    def get(self, name: str) -> Any:
        self._note(name)
        if name in self.gathered:
            return self.gathered[name]
        if name in self.problems:
            raise MissingFact(f"fact {name!r} could not be gathered: {self.problems[name]}")
        raise MissingFact(f"fact {name!r} was not gathered (its step did not run)")
