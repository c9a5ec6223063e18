"""Records: what a command answered, what a run found, what a claim concluded.

Plain data, no machinery: this module imports nothing of the transports, the runner or the lab loader,
so facts, claims and reporters (which import only records) can be read, tested and reused on their own,
e.g. on a report written elsewhere.

The verdict vocabulary of a claim:
  pass        it holds on the machine in front of us
  fail        it does not
  error       not judged: the evidence is missing (a step failed, a fact could not be gathered); the
              report says why and what to do. Spelled "error" in the JSON report (version 1).
  n/a         not applicable here: the machine cannot do what the claim is about (a kernel without
              IP_VS has no routing mesh), whatever the student does; the report says why. It is no
              failure and counts zero points of zero.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

PASS, FAIL, NOT_JUDGED, NOT_APPLICABLE = "pass", "fail", "error", "n/a"
VERDICTS = (PASS, FAIL, NOT_JUDGED, NOT_APPLICABLE)
VERDICT_WORDS = {PASS: "holds", FAIL: "fails", NOT_JUDGED: "not judged", NOT_APPLICABLE: "not applicable here"}


# ------------------------------------------------------------------------------------------------ commands


# How engines say that a name does not exist: Docker "No such container: X", "network X not found"; Podman
# "no such container", "X: image not known".
MISSING = ("no such", "not found", "not known")


def says_missing(text: str) -> bool:
    low = text.lower()
    return any(phrase in low for phrase in MISSING)


@dataclass(frozen=True)
class Result:
    """One command's answer: exit status (None if it timed out), both streams, how long it took."""

    exit_status: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def first_error_line(self) -> str:
        """The line that says what went wrong: the last one naming an error, else the last one."""
        import re

        for text in (self.stderr, self.stdout):
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if lines:
                telling = [ln for ln in lines if re.search(r"error|denied|failed|cannot|no such|not found", ln, re.I)]
                line = (telling or lines)[-1]
                return line if len(line) < 300 else line[:297] + "..."
        return f"exit status {self.exit_status}"


# ------------------------------------------------------------------------------------------------ the engine


# What a claim may need of the engine beyond running containers (a claim's `needs:` in lab.yaml). An engine
# without it makes the claim not applicable here, with the reason (Engine.lacks), never failed.
ENGINE_FEATURES = {
    "resource-limits": "the engine applies a container's --memory and --cpus limits",
    "docker-socket": "a Docker daemon socket (/var/run/docker.sock) a container can manage the engine through",
    "compose": "Docker Compose (docker-compose) for this engine",
    "default-bridge": "Docker's default network by its name, bridge (docker network inspect/connect bridge)",
    "container-address": "the machine reaches a container on a bridge network at the container's own address",
    "empty-tmpfs": "a tmpfs mount starts empty, whatever the image holds at its path",
    "docker-data-root": "Docker's data directory, /var/lib/docker (the storage driver's layers, containers/)",
}


def _seconds(when: str) -> str | None:
    """An RFC 3339 time with up to nanoseconds (Go's form) as seconds.nanoseconds; None if it is not one."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", when)
    if match is None:
        return None
    seconds = int(datetime.fromisoformat(match[1] + ("+00:00" if match[3] == "Z" else match[3])).timestamp())
    return f"{seconds}.{(match[2] or '').ljust(9, '0')}"


DOCKER_ROOT = "/var/lib/docker"  # Docker's root directory unless its daemon is told otherwise


def docker_root(engine: "Engine | None") -> str:
    """The engine's root directory (`docker info`: DockerRootDir); Docker's default where no engine answered."""
    return engine.docker_root_dir if engine is not None else DOCKER_ROOT


@dataclass(frozen=True)
class Engine:
    """The engine a run met (from `docker info`, the client's version, the user's environment): Docker's, or
    Podman answering the course's `docker` commands (podman-docker), whose `docker info` prints Podman's own
    form (host, store, version) instead of Docker's."""

    server_version: str
    storage_driver: str
    docker_root_dir: str
    driver_status: tuple[tuple[str, str], ...] = ()
    operating_system: str = ""
    kernel: str = ""
    cgroup_version: str = ""
    client_version: str = ""
    buildx: bool = False
    buildkit_env: str | None = None  # DOCKER_BUILDKIT in the target user's environment
    engine_id: str = ""  # the engine's own ID (`docker info`: ID), which ties a report to the machine
    name: str = ""  # the engine's host name (`docker info`: Name)
    labels: tuple[str, ...] = ()  # the engine's labels (`docker info`: Labels), e.g. check-lab.student=ID
    product: str = "docker"  # docker | podman
    rootless: bool = False  # Podman run by the login user itself (its own store, no daemon, no docker group)
    # The engine's clock when it answered (`docker info`: SystemTime) in the seconds.nanoseconds form `docker events
    # --since` takes: observe mode asks the engine's log for changes after it. None: the engine tells no time
    # (Podman's form). Of this one answer, not of the engine: no part of comparing engines.
    clock: str | None = field(default=None, compare=False)
    # The Unix socket of the engine's API where the login user may ask it with curl (observe mode looks for one:
    # one curl costs the machine a third of a `docker` command). None: the `docker` command answers. Of this
    # machine's set-up, not of the engine: no part of comparing engines.
    api_socket: str | None = field(default=None, compare=False)

    @property
    def student(self) -> str | None:
        """The student whose machine this is, as its provisioning labelled the engine (LAB_STUDENT)."""
        return next((label.split("=", 1)[1] for label in self.labels if label.startswith("check-lab.student=")), None)

    @staticmethod
    def is_podman_info(info: dict) -> bool:
        """`docker info --format '{{json .}}'` through podman-docker: Podman's keys, not Docker's."""
        return isinstance(info.get("host"), dict) and isinstance(info.get("store"), dict) and "ServerVersion" not in info

    @classmethod
    def from_info(cls, info: dict, client_version: str = "", buildx: bool = False,
                  buildkit_env: str | None = None, api_socket: str | None = None) -> "Engine":
        if cls.is_podman_info(info):
            return cls.from_podman_info(info, client_version)
        return cls(
            server_version=str(info.get("ServerVersion", "")),
            storage_driver=str(info.get("Driver", "")),
            docker_root_dir=str(info.get("DockerRootDir", DOCKER_ROOT)),
            driver_status=tuple(tuple(map(str, pair)) for pair in info.get("DriverStatus") or []),
            operating_system=str(info.get("OperatingSystem", "")),
            kernel=str(info.get("KernelVersion", "")),
            cgroup_version=str(info.get("CgroupVersion", "")),
            client_version=client_version,
            buildx=buildx,
            buildkit_env=buildkit_env,
            engine_id=str(info.get("ID", "")),
            name=str(info.get("Name", "")),
            labels=tuple(str(label) for label in info.get("Labels") or ()),
            clock=_seconds(str(info.get("SystemTime") or "")),
            api_socket=api_socket,
        )

    @classmethod
    def from_podman_info(cls, info: dict, client_version: str = "") -> "Engine":
        host, store, version = info.get("host") or {}, info.get("store") or {}, info.get("version") or {}
        distribution = host.get("distribution") or {}
        operating_system = " ".join(str(distribution.get(k)) for k in ("distribution", "version", "codename")
                                    if distribution.get(k) not in (None, "", "unknown"))
        return cls(
            server_version=str(version.get("Version", "")),
            storage_driver=str(store.get("graphDriverName", "")),
            docker_root_dir=str(store.get("graphRoot", "")),
            driver_status=tuple((str(k), str(v)) for k, v in (store.get("graphStatus") or {}).items()),
            operating_system=operating_system,
            kernel=str(host.get("kernel", "")),
            cgroup_version=str(host.get("cgroupVersion", "")).removeprefix("v"),
            client_version=client_version or str(version.get("Version", "")),
            engine_id="",  # Podman has no engine ID (its REST API makes up a new one per call)
            name=str(host.get("hostname", "")),
            product="podman",
            rootless=bool((host.get("security") or {}).get("rootless")),
        )

    @property
    def podman(self) -> bool:
        return self.product == "podman"

    def lacking(self, needs) -> str:
        """Why this engine cannot do the first of `needs` it lacks, or "" when it can do them all."""
        return next((reason for need in needs for reason in [self.lacks(need)] if reason), "")

    def lacks(self, feature: str) -> str:
        """Why this engine cannot do what a claim needs (ENGINE_FEATURES), or "" when it can."""
        if not self.podman:
            return ""
        if feature == "resource-limits" and self.rootless and self.cgroup_version == "1":
            return ("rootless Podman on cgroup v1 ignores a container's resource limits (--memory, --cpus): it "
                    "says so on each `run` (\"Resource limits are not supported and ignored on cgroups V1 "
                    "rootless systems\")")
        if feature == "docker-socket":
            return f"Podman {self.server_version} runs no Docker daemon: there is no /var/run/docker.sock to mount"
        if feature == "compose":
            return "no docker-compose for Podman here (the provisioner installs Compose for Docker's engine only)"
        if feature == "default-bridge":
            return ("Podman's default network is named podman: `docker network inspect bridge` and `docker network "
                    "connect bridge` find no network named bridge (`--net bridge` runs a container on podman)")
        if feature == "docker-data-root":
            owner = "the user's" if self.rootless else "its"
            return (f"Podman keeps images and containers in {owner} own store "
                    f"({self.docker_root_dir}), laid out as Podman's: there is no /var/lib/docker to list")
        if feature == "empty-tmpfs":
            return ("Podman copies what the image holds at a tmpfs mount's path into it (tmpcopyup, its default): "
                    "nginx's image holds access.log as a link to /dev/stdout, so nginx logs to the container's "
                    "output, not to a file on the tmpfs")
        if feature == "container-address" and self.rootless:
            return ("rootless Podman's bridge networks live in the user's own network namespace: the machine does "
                    "not reach a container at its address there (only through a published port)")
        return ""

    @property
    def containerd_store(self) -> bool:
        return any("io.containerd.snapshotter" in value for _key, value in self.driver_status)

    @property
    def image_store(self) -> str:
        return "containerd" if self.containerd_store else self.storage_driver

    @property
    def builder(self) -> str:
        """The builder `docker build` uses by default for this user: legacy or buildkit (Podman: buildah)."""
        if self.podman:
            return "buildah"
        if self.buildkit_env in ("0", "false"):
            return "legacy"
        if self.buildkit_env in ("1", "true"):
            return "buildkit"
        major = int(self.client_version.split(".")[0]) if self.client_version[:1].isdigit() else 0
        # Since Docker 23 the CLI builds with BuildKit (through buildx) unless told otherwise.
        return "buildkit" if major >= 23 and self.buildx else "legacy"

    def describe(self) -> str:
        if self.podman:
            return (f"Podman {self.server_version}{' (rootless)' if self.rootless else ''}, "
                    f"{self.storage_driver} storage driver, through podman-docker")
        store = "containerd image store" if self.containerd_store else f"{self.storage_driver} storage driver"
        return f"Docker {self.server_version}, {store}, {self.builder} builder"

    def as_dict(self) -> dict:
        return {"server_version": self.server_version, "client_version": self.client_version,
                "storage_driver": self.storage_driver, "image_store": self.image_store,
                "containerd_image_store": self.containerd_store, "builder": self.builder, "buildx": self.buildx,
                "docker_root_dir": self.docker_root_dir, "operating_system": self.operating_system,
                "kernel": self.kernel, "cgroup_version": self.cgroup_version, "id": self.engine_id, "name": self.name,
                "labels": list(self.labels), "product": self.product, "rootless": self.rootless}


# ------------------------------------------------------------------------------------------------ steps


@dataclass
class StepFact:
    """A step of the lab as it ran: its command, what it answered, and its output parsed."""

    step_id: str
    title: str
    command: str
    status: str = "not-run"  # passed | failed | timed-out | not-run | skipped (observe mode)
    result: Result | None = None
    parsed: Any = None
    error: str | None = None
    unreadable: bool = False  # its output did not parse


EXCERPT_CHARS = 400
# What a report must not carry: a swarm's join token (it lets any machine that reaches the manager join).
SECRETS = re.compile(r"\b(SWMTKN-1-)[0-9a-z]+-[0-9a-z]+")


def redact(text: str) -> str:
    """`text` with the secrets it holds cut short (SWMTKN-1-…), for reports and the commands shown."""
    return SECRETS.sub(r"\1…", text) if text else text


def redacted(fact: "StepFact") -> "StepFact":
    """A step's record as a report shows it: its output without secrets."""
    if fact.result is None:
        return fact
    return replace(fact, result=replace(fact.result, stdout=redact(fact.result.stdout),
                                        stderr=redact(fact.result.stderr)))


def source(command: str | None, result: Result | None, step: str | None = None, why: str | None = None) -> dict:
    """Where a fact came from: the command, its exit status, and the start of what it printed; or, for one
    not asked of the machine (`command` None), why not."""
    if command is None or result is None:
        return {"command": None, "step": step, "exit_status": None, "timed_out": False, "excerpt": "", "why": why}
    text = result.stdout if result.stdout.strip() else result.stderr
    excerpt = text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + f"… [{len(text)} characters]"
    return {"command": redact(command), "step": step, "exit_status": result.exit_status,
            "timed_out": result.timed_out, "excerpt": redact(excerpt)}


# ------------------------------------------------------------------------------------------------ claims


@dataclass
class Verdict:
    """What a check concludes: whether the claim holds, what was expected and observed, a hint."""

    ok: bool
    expected: str
    observed: str
    hint: str | None = None
    details: dict = field(default_factory=dict)


@dataclass
class ClaimResult:
    id: str
    title: str
    verdict: str  # pass | fail | error (not judged) | n/a (not applicable here)
    expected: str
    observed: str
    hint: str
    details: dict
    points: float
    max_points: float
    evidence: tuple[str, ...] = ()  # the steps and facts the check read (the report's `sources` say whence)

    @property
    def passed(self) -> bool:
        return self.verdict == PASS


# ------------------------------------------------------------------------------------------------ runs


@dataclass(frozen=True)
class LabInfo:
    """The lab a report is about, as the report needs it (no lab loader behind it)."""

    id: str
    title: str
    folder: str
    variables: dict = field(default_factory=dict)
    # Where this run departs from the course's text: steps that cannot run as printed (with the course's
    # command and why), files changed on upload, and steps or claims the checker adds.
    departures: tuple[dict, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.id} – {self.title}"


def left_unchanged(fingerprint: dict | None) -> bool:
    """Observe mode: whether the engine was shown left as it was (no change in its log, or the same hash)."""
    if not fingerprint:
        return False
    if "changes" in fingerprint:
        return fingerprint["changes"] == []
    return fingerprint.get("after") is not None and fingerprint.get("before") == fingerprint["after"]


def combined_fingerprint(machines: dict[str, dict | None]) -> dict | None:
    """A lab over several machines: each machine's fingerprint, one line (or change) per machine, by name."""
    found = list(machines.values())
    if not found or any(fp is None for fp in found):
        return None
    if all("changes" in fp for fp in found):
        changes = None if any(fp["changes"] is None for fp in found) else \
            [f"{name}: {change}" for name, fp in machines.items() for change in fp["changes"]]
        return {"since": "\n".join(f"{name}: {fp['since']}" for name, fp in machines.items()), "changes": changes}
    if all("before" in fp for fp in found):
        after = [None if fp["after"] is None else f"{name}: {fp['after']}" for name, fp in machines.items()]
        return {"before": "\n".join(f"{name}: {fp['before']}" for name, fp in machines.items()),
                "after": None if None in after else "\n".join(after)}
    return None


@dataclass
class RunReport:
    """Everything one run of a lab on one target found."""

    lab: LabInfo
    target: str
    started_at: str
    engine: Engine | None = None
    steps: list[StepFact] = field(default_factory=list)
    claims: list[ClaimResult] = field(default_factory=list)
    statements: list[ClaimResult] = field(default_factory=list)  # the lab's text on this engine
    notes: list[str] = field(default_factory=list)  # what cleanup did or could not do
    duration: float = 0.0
    interrupted: bool = False
    signal: str | None = None  # the signal that ended the run early (SIGINT, SIGTERM, SIGHUP)
    error: str | None = None  # the target failed mid-run
    timings: dict[str, float] = field(default_factory=dict)
    # Observe mode, what shows the run left the engine as it was: {since, changes} (the changes the engine logged
    # since the run began; None: its log no longer reached back) or {before, after} (a hash of what it holds).
    fingerprint: dict | None = None
    nonce: str | None = None  # given by the grader (--nonce) or drawn for this run: one report, one run
    student: str | None = None  # --student: whose machine the grader asked for (its engine says so)
    machine_id: str | None = None  # the machine's /etc/machine-id (machines: name -> id, one per line)
    sources: dict[str, dict] = field(default_factory=dict)  # fact name -> where it came from (records.source)

    @property
    def passed(self) -> bool:
        """Every claim judged here holds (a lab whose claims are all not applicable on this engine passes: it
        asks nothing of this engine), and the run was not cut short."""
        judged = [c for c in self.claims if c.verdict != NOT_APPLICABLE]
        stopped = any(s.status in ("failed", "timed-out") for s in self.steps)
        return (bool(self.claims) and all(c.passed for c in judged) and not self.error and not self.interrupted
                and (bool(judged) or not stopped))

    @property
    def differences(self) -> list[ClaimResult]:
        """The lab's statements that do not hold as written on this engine (judged ones only)."""
        return [s for s in self.statements if s.verdict == FAIL]

    @property
    def score(self) -> tuple[float, float]:
        return sum(c.points for c in self.claims), sum(c.max_points for c in self.claims)

    def counts(self) -> dict[str, int]:
        return {v: sum(1 for c in self.claims if c.verdict == v) for v in VERDICTS}


def departures_run(lab: LabInfo, steps: list[StepFact]) -> LabInfo:
    """The lab's departures from the course's text that concern this run: those of steps it ran (observe
    mode and --watch run only the steps that look), of files it uploaded, and of claims."""
    from dataclasses import replace

    ran = {s.step_id for s in steps if s.status not in ("skipped", "not-run")}
    uploaded = all(s.status != "skipped" for s in steps)
    keep = tuple(d for d in lab.departures
                 if (d.get("step") in ran) or ("claim" in d) or (d["kind"] == "file" and uploaded))
    return replace(lab, departures=keep)


@dataclass
class TargetRun:
    """One target of many (`--targets`): its report, or why it could not be checked at all."""

    label: str
    spec: str
    report: RunReport | None
    error: str | None  # the target could not be checked (unreachable, not ready)
    exit_code: int
    seconds: float
