#!/usr/bin/env python3
"""Make a VM Docker-ready: the guest side of provisioning, the one definition of its steps.

Runs as root inside the VM, with the Python standard library only (a fresh Ubuntu or Debian box has
python3 and nothing else we could rely on). Two ways run it: `vagrant up` / `vagrant provision`
through the Vagrantfile's shell provisioner, and `lab-env provision` over SSH. Settings come from
LAB_* environment variables (OPTIONS); `lab-env` flags of the same names set them.

Every step is idempotent: check, act only if needed, verify; it reports `changed`, `unchanged` or
`failed` with a reason. A second run reports every step `unchanged` and calls no package manager.
"""

from __future__ import annotations

import glob
import grp
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field

DAEMON_JSON = "/etc/docker/daemon.json"
APT_PROXY_CONF = "/etc/apt/apt.conf.d/01check-lab-proxy"
ENVIRONMENT = "/etc/environment"
DOCKER_KEYRING = "/etc/apt/keyrings/docker.asc"
DOCKER_SOURCES = "/etc/apt/sources.list.d/docker.list"
SSD_PIDFILE = "/var/run/docker-ssd.pid"

# name -> (environment variable, default, allowed values or None, help)
OPTIONS = {
    "registry_mirror": ("LAB_REGISTRY_MIRROR", "", None, "registry mirror URL(s) for Docker pulls, comma-separated"),
    "insecure_registry": ("LAB_INSECURE_REGISTRY", "", None, "registries reached over plain HTTP, comma-separated"),
    "apt_proxy": ("LAB_APT_PROXY", "", None, "HTTP proxy for apt, e.g. a classroom apt-cacher-ng (http://HOST:3142)"),
    "docker_source": ("LAB_DOCKER_SOURCE", "distro", None,
                      "where Docker comes from: the distribution's docker.io (distro) or Docker's own apt "
                      "repository (docker, needs LAB_DOCKER_REPOSITORY); =VERSION pins a release, e.g. "
                      "distro=20.10 or docker=28.5.2 (an installed engine of another version is changed to it)"),
    "docker_repository": ("LAB_DOCKER_REPOSITORY", "", None,
                          "Docker's own apt repository for LAB_DOCKER_SOURCE=docker: the URL of the folder that "
                          "holds its ubuntu/ and debian/ repositories (as Docker's install guide names it)"),
    "engine": ("LAB_ENGINE", "docker", ("docker", "podman"),
               "the engine behind the course's docker commands: Docker, or Podman with podman-docker (the login "
               "user's own rootless Podman; the distribution's packages)"),
    "image_store": ("LAB_IMAGE_STORE", "overlay2", ("overlay2", "containerd"),
                    "the image store: overlay2 (classic, what the labs describe) or the containerd image store"),
    "builder": ("LAB_BUILDER", "", ("", "legacy", "buildkit"),
                "the default builder of `docker build`: legacy or buildkit (empty: the engine's own default)"),
    "storage_driver": ("LAB_STORAGE_DRIVER", "overlay2", None, "the storage driver of the classic image store"),
    "compose": ("LAB_COMPOSE", "yes", ("yes", "no"),
                "Docker Compose's `docker-compose` command, which lab 13 types: installed when missing (yes), "
                "from the distribution, or as a front to the engine's `docker compose` plugin when it has one"),
    "user": ("LAB_USER", "vagrant", None, "the login user that must be able to run docker"),
    "hosts": ("LAB_HOSTS", "", None,
              "the course's machines this one knows by name, ADDRESS=NAME,... (the swarm machines), in /etc/hosts"),
    "student": ("LAB_STUDENT", "", None,
                "the student whose machine this is: the engine's label check-lab.student=ID, which "
                "`check-lab --student ID` checks"),
}
DOCKER_SOURCE = re.compile(r"(distro|docker)(?:=(\d+(?:\.\d+){0,2}))?")
STUDENT_LABEL = "check-lab.student="
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
LISTS = ("registry_mirror", "insecure_registry", "hosts")
PACKAGE_MANAGERS = ("apt-get", "dpkg")


class StepFailed(Exception):
    pass


@dataclass
class Outcome:
    step: str
    status: str  # changed | unchanged | failed
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Options:
    registry_mirror: list[str] = field(default_factory=list)
    insecure_registry: list[str] = field(default_factory=list)
    apt_proxy: str = ""
    docker_source: str = "distro"
    docker_repository: str = ""
    engine: str = "docker"
    image_store: str = "overlay2"
    builder: str = ""
    storage_driver: str = "overlay2"
    user: str = "vagrant"
    compose: str = "yes"
    hosts: list[str] = field(default_factory=list)
    student: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> "Options":
        values: dict = {}
        for name, (var, default, choices, _help) in OPTIONS.items():
            raw = environ.get(var, default).strip()
            if choices is not None and raw not in choices:
                allowed = " or ".join(repr(c) for c in choices if c) + (" (or empty)" if "" in choices else "")
                raise StepFailed(f"{var}={raw!r}: must be {allowed}")
            values[name] = [v.strip() for v in raw.split(",") if v.strip()] if name in LISTS else raw
        if not DOCKER_SOURCE.fullmatch(values["docker_source"]):
            raise StepFailed(f"LAB_DOCKER_SOURCE={values['docker_source']!r}: must be distro or docker, "
                             f"optionally =VERSION (distro=20.10, docker=28.5.2)")
        if values["engine"] == "podman":
            # What only Docker's engine has: refused in one line rather than ignored.
            for name, what in (("docker_source", "distro"), ("image_store", "overlay2"), ("builder", ""),
                               ("student", "")):
                if values[name] != what:
                    raise StepFailed(f"LAB_ENGINE=podman: {OPTIONS[name][0]}={values[name]!r} is a setting of "
                                     f"Docker's engine (Podman comes from the distribution and has no engine labels)")
        return cls(**values)

    @property
    def engine_source(self) -> str:
        """distro or docker, without the pin."""
        return self.docker_source.partition("=")[0]

    @property
    def engine_pin(self) -> str:
        """The pinned release (20.10, 28.5.2), or "" when any version will do."""
        return self.docker_source.partition("=")[2]


# What this run handed to a package manager: a second run must hand it nothing.
PACKAGE_CALLS: list[str] = []


def sh(argv: list[str], *, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    if os.path.basename(argv[0]) in PACKAGE_MANAGERS:
        PACKAGE_CALLS.append(" ".join(argv))
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except FileNotFoundError:
        raise StepFailed(f"{argv[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise StepFailed(f"{' '.join(argv)} did not finish within {timeout:.0f}s") from None


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def write_file(path: str, content: str, mode: int = 0o644) -> bool:
    """Write `content` to `path` atomically; False if it already held exactly that."""
    try:
        with open(path) as fh:
            if fh.read() == content:
                return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".check-lab.tmp"
    with open(tmp, "w") as fh:
        fh.write(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def version_tuple(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g) for g in match.groups() if g is not None) if match else (0,)


def dockerd_version() -> tuple[int, ...]:
    proc = sh(["dockerd", "--version"], timeout=30)
    return version_tuple(proc.stdout)


# ------------------------------------------------------------------------------------------------ apt


def apt_env() -> dict:
    return {"DEBIAN_FRONTEND": "noninteractive"}


def apt(*args: str, timeout: float = 1800) -> None:
    argv = ["apt-get", "-q", "-y", *args]
    proc = sh(argv, timeout=timeout, env=apt_env())
    if proc.returncode != 0:
        raise StepFailed(f"apt-get {' '.join(args)} failed: {last_line(proc.stderr or proc.stdout)}")


def package_available(name: str) -> bool:
    proc = sh(["apt-cache", "show", "--no-all-versions", name], timeout=60)
    return proc.returncode == 0 and bool(proc.stdout.strip())


def step_apt_proxy(opts: Options) -> tuple[str, str]:
    if not opts.apt_proxy:
        if os.path.exists(APT_PROXY_CONF):
            os.remove(APT_PROXY_CONF)
            return "changed", f"removed {APT_PROXY_CONF} (no apt proxy set)"
        return "unchanged", "no apt proxy"
    content = (f'// written by check-lab provisioning (LAB_APT_PROXY)\n'
               f'Acquire::http::Proxy "{opts.apt_proxy}";\n')
    if write_file(APT_PROXY_CONF, content):
        return "changed", f"apt uses the proxy {opts.apt_proxy}"
    return "unchanged", f"apt uses the proxy {opts.apt_proxy}"


def os_release() -> dict[str, str]:
    out = {}
    try:
        with open("/etc/os-release") as fh:
            for line in fh:
                key, sep, value = line.strip().partition("=")
                if sep:
                    out[key] = value.strip('"')
    except FileNotFoundError:
        pass
    return out


def add_docker_repository(base: str) -> None:
    """Docker's own apt repository, as Docker's install guide sets it up, from the URL the setting names."""
    if not base:
        raise StepFailed("LAB_DOCKER_SOURCE=docker needs LAB_DOCKER_REPOSITORY (the URL of Docker's apt repository)")
    rel = os_release()
    distro, codename = rel.get("ID", ""), rel.get("VERSION_CODENAME", "")
    if distro not in ("ubuntu", "debian") or not codename:
        raise StepFailed(f"Docker's apt repository has no packages for {rel.get('PRETTY_NAME', 'this system')}")
    url = f"{base.rstrip('/')}/{distro}"
    try:
        with urllib.request.urlopen(f"{url}/gpg", timeout=60) as resp:
            key = resp.read().decode()
    except OSError as exc:
        raise StepFailed(f"cannot fetch Docker's signing key from {url}/gpg ({exc}): does the VM reach it?") \
            from None
    write_file(DOCKER_KEYRING, key)
    arch = sh(["dpkg", "--print-architecture"]).stdout.strip()
    write_file(DOCKER_SOURCES, f"deb [arch={arch} signed-by={DOCKER_KEYRING}] {url} {codename} stable\n")


ENGINE_PACKAGE = {"distro": "docker.io", "docker": "docker-ce"}


def docker_packages(source: str, builder: str) -> list[str]:
    if source == "docker":
        return ["docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin"]
    packages = ["docker.io"]
    # Newer distributions ship the client separately and only recommend it.
    if package_available("docker-cli"):
        packages.append("docker-cli")
    if builder == "buildkit" and package_available("docker-buildx"):
        packages.append("docker-buildx")
    return packages


def upstream_version(version: str) -> str:
    """A Debian version without its epoch: 5:28.5.2-1~debian.12~bookworm -> 28.5.2-1~debian.12~bookworm."""
    return version.partition(":")[2] if ":" in version else version


def pin_matches(version: str, pin: str) -> bool:
    """The package version is of the pinned release: 20.10 matches 20.10.24+dfsg1-1, 28.5 never 28.50.1."""
    upstream = upstream_version(version)
    return upstream.startswith(pin) and not upstream[len(pin):len(pin) + 1].isdigit()


def available_versions(package: str) -> list[str]:
    """The versions of a package the apt sources hold, newest first (apt-cache madison's order)."""
    proc = sh(["apt-cache", "madison", package], timeout=60)
    versions = []
    for line in proc.stdout.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 2 and parts[0] == package and parts[1] not in versions:
            versions.append(parts[1])
    return versions


def installed_version(package: str) -> str:
    proc = sh(["dpkg-query", "-W", "-f", "${Status} ${Version}", package], timeout=60)
    status, _, version = proc.stdout.rpartition(" ")
    return version if proc.returncode == 0 and status.endswith("install ok installed") else ""


def pinned_version(opts: Options, package: str) -> str:
    """The newest version of the pinned release in the apt sources (after apt update), or a one-line refusal."""
    versions = available_versions(package)
    for version in versions:
        if pin_matches(version, opts.engine_pin):
            return version
    have = ", ".join(upstream_version(v) for v in versions[:6]) or "none"
    raise StepFailed(f"LAB_DOCKER_SOURCE={opts.docker_source}: the apt sources have no {package} {opts.engine_pin} "
                     f"(they have: {have}); nothing changed")


def prepare_sources(opts: Options) -> None:
    if opts.engine_source == "docker":
        apt("update")
        apt("install", "--no-install-recommends", "ca-certificates")
        add_docker_repository(opts.docker_repository)
    apt("update")


def step_engine_installed(opts: Options, state: dict) -> tuple[str, str]:
    package = ENGINE_PACKAGE[opts.engine_source]
    if shutil.which("dockerd") and shutil.which("docker"):
        if not opts.engine_pin:
            return "unchanged", "dockerd and docker are installed"
        have = installed_version(package)
        if not have:
            other = next((f"{p} {upstream_version(v)}" for p in ENGINE_PACKAGE.values() if p != package
                          for v in [installed_version(p)] if v), "not from a package")
            raise StepFailed(f"LAB_DOCKER_SOURCE={opts.docker_source}: the installed engine is {other}, not {package}; "
                             f"left as it is")
        if pin_matches(have, opts.engine_pin):
            return "unchanged", f"{package} {upstream_version(have)} is installed ({opts.engine_pin} wanted)"
        prepare_sources(opts)
        version = pinned_version(opts, package)
        pins = [f"{package}={version}"] + (["docker-ce-cli=" + version] if package == "docker-ce" else [])
        apt("install", "--no-install-recommends", "--allow-downgrades", *pins)
        state["config_changed"] = True  # the daemon restarts on the new version
        return "changed", f"{package} {upstream_version(have)} -> {upstream_version(version)}"
    if not shutil.which("apt-get"):
        raise StepFailed("no Docker engine, and no apt-get to install one")
    prepare_sources(opts)
    packages = docker_packages(opts.engine_source, opts.builder)
    if opts.engine_pin:
        version = pinned_version(opts, package)
        packages = [f"{p}={version}" if p in (package, "docker-ce-cli") else p for p in packages]
    apt("install", "--no-install-recommends", *packages)
    if not shutil.which("dockerd"):
        raise StepFailed(f"installed {' '.join(packages)}, but dockerd is not on PATH")
    return "changed", f"installed {' '.join(packages)}"


def buildx_present() -> bool:
    return sh(["docker", "buildx", "version"], timeout=30).returncode == 0


def step_builder_installed(opts: Options) -> tuple[str, str]:
    if opts.builder != "buildkit":
        return "unchanged", "no BuildKit plugin needed"
    client = version_tuple(sh(["docker", "--version"], timeout=30).stdout)
    if client < (23,):
        return "unchanged", f"the Docker {'.'.join(map(str, client))} client has BuildKit built in"
    if buildx_present():
        return "unchanged", "docker buildx is installed"
    package = "docker-buildx-plugin" if os.path.exists(DOCKER_SOURCES) else "docker-buildx"
    apt("update")
    apt("install", "--no-install-recommends", package)
    if not buildx_present():
        raise StepFailed(f"installed {package}, but `docker buildx version` still fails")
    return "changed", f"installed {package}"


COMPOSE_FRONT = "/usr/local/bin/docker-compose"


def compose_version() -> str:
    """`docker-compose`'s version (1.29.2: Compose v1; 2.x: v2), or "" when there is none."""
    if not shutil.which("docker-compose"):
        return ""
    proc = sh(["docker-compose", "version", "--short"], timeout=60)
    return proc.stdout.strip().splitlines()[0].lstrip("v") if proc.returncode == 0 and proc.stdout.strip() else ""


def step_compose_installed(opts: Options) -> tuple[str, str]:
    if opts.compose == "no":
        return "unchanged", "Docker Compose not wanted (LAB_COMPOSE=no)"
    version = compose_version()
    if version:
        return "unchanged", f"docker-compose {version} is installed"
    plugin = sh(["docker", "compose", "version", "--short"], timeout=60)
    if plugin.returncode == 0 and plugin.stdout.strip():
        # Docker's own packages have only the plugin: the course's `docker-compose` runs it.
        write_file(COMPOSE_FRONT, '#!/bin/sh\n# written by check-lab provisioning: the course types docker-compose\n'
                                  'exec docker compose "$@"\n', mode=0o755)
        return "changed", f"docker-compose runs the engine's compose plugin {plugin.stdout.strip().lstrip('v')}"
    apt("update")
    if not package_available("docker-compose"):
        raise StepFailed("no docker-compose package in this distribution, and no `docker compose` plugin")
    apt("install", "--no-install-recommends", "docker-compose")
    version = compose_version()
    if not version:
        raise StepFailed("installed docker-compose, but `docker-compose version` fails")
    return "changed", f"installed docker-compose {version}"


# The course's commands beyond Docker's, on the machine itself (Ubuntu's images have them; a minimal box may not):
# curl asks the labs' published ports (labs 02, 03, 06, 10, 11, 13, 14).
TOOLS = ("curl",)


def step_tools_installed(opts: Options) -> tuple[str, str]:
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    if not missing:
        return "unchanged", f"{', '.join(TOOLS)} installed"
    if not shutil.which("apt-get"):
        raise StepFailed(f"{', '.join(missing)} missing, and no apt-get to install it")
    apt("update")
    apt("install", "--no-install-recommends", *missing)
    still = [tool for tool in missing if not shutil.which(tool)]
    if still:
        raise StepFailed(f"installed {', '.join(missing)}, but {', '.join(still)} is not on PATH")
    return "changed", f"installed {', '.join(missing)}"


# ------------------------------------------------------------------------------------------------ daemon


def desired_daemon_config(opts: Options, current: dict) -> dict:
    """The current daemon.json with our keys set; keys we do not manage are kept as they are."""
    config = dict(current)
    features = dict(config.get("features") or {})
    if opts.image_store == "containerd":
        features["containerd-snapshotter"] = True
        config.pop("storage-driver", None)
    else:
        features["containerd-snapshotter"] = False
        config["storage-driver"] = opts.storage_driver
    if opts.builder:
        features["buildkit"] = opts.builder == "buildkit"
    else:
        features.pop("buildkit", None)
    config["features"] = features
    for key, values in (("registry-mirrors", opts.registry_mirror), ("insecure-registries", opts.insecure_registry)):
        if values:
            config[key] = values
        else:
            config.pop(key, None)
    # The engine's label naming its student (other labels are kept as they are).
    labels = [label for label in config.get("labels") or [] if not str(label).startswith(STUDENT_LABEL)]
    if opts.student:
        labels.append(STUDENT_LABEL + opts.student)
    if labels:
        config["labels"] = labels
    else:
        config.pop("labels", None)
    return config


def read_daemon_json() -> dict:
    try:
        with open(DAEMON_JSON) as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise StepFailed(f"{DAEMON_JSON} is not valid JSON ({exc}); fix or remove it") from None
    if not isinstance(data, dict):
        raise StepFailed(f"{DAEMON_JSON} must hold a JSON object")
    return data


def step_daemon_config(opts: Options, state: dict) -> tuple[str, str]:
    if opts.student and not STUDENT_ID.fullmatch(opts.student):
        raise StepFailed(f"LAB_STUDENT={opts.student!r}: a student's ID is letters, digits and . _ @ + - (at most 64)")
    if opts.image_store == "containerd":
        version = dockerd_version()
        if version < (24,):
            raise StepFailed(f"the containerd image store needs Docker 24 or newer; this VM has Docker "
                             f"{'.'.join(map(str, version))}")
    current = read_daemon_json()
    desired = desired_daemon_config(opts, current)
    if desired == current:
        return "unchanged", f"{DAEMON_JSON} as wanted"
    write_file(DAEMON_JSON, json.dumps(desired, indent=2, sort_keys=True) + "\n")
    state["config_changed"] = True
    changed = sorted(k for k in set(desired) | set(current) if desired.get(k) != current.get(k))
    return "changed", f"wrote {DAEMON_JSON} ({', '.join(changed)})"


def step_builder_default(opts: Options) -> tuple[str, str]:
    """DOCKER_BUILDKIT in /etc/environment: the client side of the builder choice, for every login."""
    try:
        with open(ENVIRONMENT) as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        lines = []
    kept = [ln for ln in lines if not ln.startswith("DOCKER_BUILDKIT=")]
    if opts.builder:
        kept.append(f"DOCKER_BUILDKIT={1 if opts.builder == 'buildkit' else 0}")
    if kept == lines:
        return "unchanged", f"default builder: {opts.builder or 'the engine default'}"
    write_file(ENVIRONMENT, "\n".join(kept) + "\n" if kept else "")
    return "changed", f"default builder: {opts.builder or 'the engine default'} ({ENVIRONMENT})"


def has_systemd() -> bool:
    return os.path.isdir("/run/systemd/system")


def engine_answers() -> bool:
    """The daemon answers: its ID, which only a server has. Newer clients (Docker 26, 28) print `docker info
    --format` with exit 0 and an empty server half when no daemon answers, so the exit code alone says nothing."""
    proc = sh(["docker", "info", "--format", "{{.ID}}"], timeout=30)
    return proc.returncode == 0 and bool(proc.stdout.strip())


# Without systemd (a container VM), dockerd runs under start-stop-daemon with the pid files of Debian's
# init script, so `service docker status|stop` keep working. The init script itself cannot be used there:
# it raises the open-files limit, which a container without CAP_SYS_RESOURCE may not do.
def plain_service(action: str) -> None:
    if action in ("stop", "restart") and os.path.exists(SSD_PIDFILE):
        proc = sh(["start-stop-daemon", "--stop", "--pidfile", SSD_PIDFILE, "--remove-pidfile", "--retry", "20"])
        if proc.returncode not in (0, 1):  # 1: was not running
            raise StepFailed(f"stopping dockerd failed: {last_line(proc.stderr or proc.stdout)}")
    if action in ("start", "restart"):
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        with open("/var/log/docker.log", "ab") as log:
            proc = subprocess.run(["start-stop-daemon", "--start", "--oknodo", "--background", "--no-close",
                                   "--exec", dockerd, "--pidfile", SSD_PIDFILE, "--make-pidfile", "--",
                                   "-p", "/var/run/docker.pid"], stdout=log, stderr=log, timeout=60)
        if proc.returncode != 0:
            raise StepFailed(f"starting dockerd failed (exit {proc.returncode}); see /var/log/docker.log")


def service(action: str) -> None:
    if not has_systemd():
        plain_service(action)
        return
    proc = sh(["systemctl", action, "docker"], timeout=180)
    if proc.returncode != 0:
        detail = sh(["journalctl", "-u", "docker", "-n", "3", "--no-pager"], timeout=30).stdout
        raise StepFailed(f"systemctl {action} docker failed: {last_line(detail or proc.stderr)}")


def wait_for_engine(timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine_answers():
            return
        time.sleep(0.5)
    hint = ""
    if os.path.exists("/var/log/docker.log"):
        with open("/var/log/docker.log", errors="replace") as fh:
            hint = ": " + last_line(fh.read()[-4000:])
    raise StepFailed(f"the Docker daemon did not answer within {timeout:.0f}s{hint}")


def step_daemon_running(opts: Options, state: dict) -> tuple[str, str]:
    running = engine_answers()
    if running and not state.get("config_changed"):
        if has_systemd() and sh(["systemctl", "is-enabled", "docker"]).stdout.strip() != "enabled":
            service("enable")
            return "changed", "enabled the docker service at boot"
        return "unchanged", "the Docker daemon is running"
    if has_systemd():
        sh(["systemctl", "enable", "docker"])
    # Restart even when it does not answer yet: a daemon still starting would keep the old configuration.
    service("restart")
    wait_for_engine()
    return "changed", "restarted the Docker daemon (new configuration)" if running else "started the Docker daemon"


def step_user_in_docker_group(opts: Options) -> tuple[str, str]:
    try:
        pwd.getpwnam(opts.user)
    except KeyError:
        raise StepFailed(f"user {opts.user!r} does not exist") from None
    try:
        group = grp.getgrnam("docker")
    except KeyError:
        raise StepFailed("group 'docker' does not exist (is docker.io installed?)") from None
    if opts.user in group.gr_mem:
        return "unchanged", f"{opts.user} is in the docker group"
    proc = sh(["usermod", "-aG", "docker", opts.user])
    if proc.returncode != 0:
        raise StepFailed(f"usermod failed: {last_line(proc.stderr)}")
    return "changed", f"added {opts.user} to the docker group"


def step_verify(opts: Options) -> tuple[str, str]:
    proc = sh(["docker", "info", "--format", "{{json .}}"], timeout=60)
    if proc.returncode != 0:
        raise StepFailed(f"docker info failed: {last_line(proc.stderr)}")
    info = json.loads(proc.stdout)
    if info.get("ServerErrors") or not info.get("ServerVersion"):
        errors = "; ".join(info.get("ServerErrors") or []) or "no server version"
        raise StepFailed(f"docker info has no answer from the daemon ({errors})")
    driver = info.get("Driver")
    containerd_store = any("io.containerd.snapshotter" in str(v) for _k, v in info.get("DriverStatus") or [])
    if opts.image_store == "containerd" and not containerd_store:
        raise StepFailed(f"the engine does not use the containerd image store (driver {driver})")
    if opts.image_store == "overlay2" and (containerd_store or driver != opts.storage_driver):
        raise StepFailed(f"the engine uses the {driver} storage driver"
                         f"{' of the containerd image store' if containerd_store else ''}, not {opts.storage_driver}")
    mirrors = (info.get("RegistryConfig") or {}).get("Mirrors") or []
    wanted = [m.rstrip("/") + "/" for m in opts.registry_mirror]
    if any(m not in mirrors for m in wanted):
        raise StepFailed(f"registry mirrors are {mirrors}, wanted {wanted}")
    as_user = sh(["runuser", "-u", opts.user, "--", "docker", "version", "--format", "{{.Server.Version}}"], timeout=60)
    if as_user.returncode != 0:
        raise StepFailed(f"{opts.user} cannot use Docker: {last_line(as_user.stderr)}")
    store = "containerd image store" if containerd_store else f"{driver} storage driver"
    return "unchanged", f"Docker {info.get('ServerVersion')}, {store}, usable by {opts.user}" + (
        f", mirror {', '.join(opts.registry_mirror)}" if opts.registry_mirror else "")


MACHINE_ID_FILE = "/etc/machine-id"


def step_machine_id(opts: Options) -> tuple[str, str]:
    """The machine's ID (/etc/machine-id), which a grader's report records: a VM has one from its first boot; a
    container VM's image often has none, or an empty file, and gets one here (32 hex digits, as systemd
    writes it). An ID present is never changed."""
    try:
        with open(MACHINE_ID_FILE) as fh:
            current = fh.read().strip()
    except FileNotFoundError:
        current = ""
    if re.fullmatch(r"[0-9a-f]{32}", current):
        return "unchanged", f"{MACHINE_ID_FILE} {current}"
    if current:
        raise StepFailed(f"{MACHINE_ID_FILE} holds {current[:40]!r}, not a machine ID: left as it is")
    import uuid

    new = uuid.uuid4().hex
    with open(MACHINE_ID_FILE, "w") as fh:  # in place (it may be a bind mount)
        fh.write(new + "\n")
    return "changed", f"{MACHINE_ID_FILE} {new} (it had none)"


HOSTS_FILE = "/etc/hosts"
HOSTS_BEGIN, HOSTS_END = "# the course's machines (check-lab provisioner)", "# end of the course's machines"


def step_hosts(opts: Options) -> tuple[str, str]:
    """The course's machines by name in /etc/hosts: one block of ours, rewritten in place (in a container VM
    the file is a bind mount, which cannot be replaced by a rename)."""
    if not opts.hosts:
        return "unchanged", "no other machines to name (LAB_HOSTS is empty)"
    lines = []
    for entry in opts.hosts:
        address, _, name = entry.partition("=")
        if not address.strip() or not name.strip():
            raise StepFailed(f"LAB_HOSTS: {entry!r} is not ADDRESS=NAME")
        lines.append(f"{address.strip()}\t{name.strip()}")
    with open(HOSTS_FILE) as fh:
        current = fh.read().splitlines()
    kept, inside = [], False
    for line in current:
        if line == HOSTS_BEGIN:
            inside = True
        elif line == HOSTS_END:
            inside = False
        elif not inside:
            kept.append(line)
    wanted = "\n".join(kept + [HOSTS_BEGIN, *lines, HOSTS_END]) + "\n"
    if "\n".join(current) + "\n" == wanted:
        return "unchanged", f"{len(lines)} machine(s) named in {HOSTS_FILE}"
    with open(HOSTS_FILE, "w") as fh:  # in place
        fh.write(wanted)
    return "changed", f"{len(lines)} machine(s) named in {HOSTS_FILE}"


# ------------------------------------------------------------------------------------------------ Podman
# LAB_ENGINE=podman: the distribution's Podman with podman-docker, so the course's `docker …` commands run
# `podman …`; the login user runs its own rootless Podman (its own store in its home, no daemon, no docker
# group), as a student who installs podman-docker on their laptop does.

# Read after the distribution's drop-ins (alphabetical order: shortnames.conf first), so its aliases win.
PODMAN_REGISTRIES = "/etc/containers/registries.conf.d/zz-check-lab.conf"
PODMAN_REGISTRIES_OLD = "/etc/containers/registries.conf.d/50-check-lab.conf"  # its name before aliases
PODMAN_REGISTRY_FILES = ("/etc/containers/registries.conf", "/etc/containers/registries.conf.d/*.conf")
PODMAN_NODOCKER = "/etc/containers/nodocker"  # podman-docker's "Emulate Docker CLI using podman" note, quiet
SUBID_FILES = ("/etc/subuid", "/etc/subgid")
SUBID_COUNT = 65536
TUN = "/dev/net/tun"


def podman_packages() -> list[str]:
    # uidmap: newuidmap for rootless user namespaces; rootless networking: pasta (Podman 5), else slirp4netns
    # (Podman 4). Recommends the labs need, which --no-install-recommends drops: nftables (netavark's firewall:
    # without nft, `docker network create` and `--net bridge` fail), aardvark-dns (containers' names on a
    # network of one's own, lab 09), catatonit (`--init`), ca-certificates (pulls from HTTPS registries).
    network = next((p for p in ("passt", "slirp4netns") if package_available(p)), None)
    wanted = ["podman", "podman-docker", "uidmap"] + ([network] if network else [])
    return wanted + [p for p in ("nftables", "aardvark-dns", "catatonit", "ca-certificates") if package_available(p)]


def step_podman_installed(opts: Options, state: dict) -> tuple[str, str]:
    if shutil.which("dockerd"):
        raise StepFailed("LAB_ENGINE=podman: this machine has Docker's engine (dockerd), whose docker command "
                         "podman-docker would replace; left as it is")
    if shutil.which("podman") and shutil.which("docker") and shutil.which("newuidmap") \
            and all(installed_version(p) for p in ("nftables", "aardvark-dns") if package_available(p)):
        version = sh(["podman", "--version"], timeout=30).stdout.strip()
        return "unchanged", f"{version} and podman-docker are installed"
    if not shutil.which("apt-get"):
        raise StepFailed("no Podman, and no apt-get to install it")
    apt("update")
    packages = podman_packages()
    apt("install", "--no-install-recommends", *packages)
    if not shutil.which("podman") or not shutil.which("docker"):
        raise StepFailed(f"installed {' '.join(packages)}, but podman or docker is not on PATH")
    return "changed", f"installed {' '.join(packages)}"


def registry_location(url: str) -> tuple[str, bool]:
    """A mirror URL as containers-registries.conf names it (host[:port][/path]), and whether it is plain HTTP."""
    scheme, sep, rest = url.partition("://")
    return (rest if sep else url).rstrip("/"), sep != "" and scheme == "http"


def foreign_aliases(paths) -> list[str]:
    """The short names the machine's registries files alias to a registry other than Docker Hub (Podman's
    distribution sends hello-world to its own hello image elsewhere), in the order found."""
    names: list[str] = []
    for path in paths:
        try:
            with open(path) as fh:
                text = fh.read()
        except OSError:
            continue
        table = ""
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("["):
                table = line
                continue
            match = re.match(r'"([^"]+)"\s*=\s*"([^"]+)"', line)
            if table == "[aliases]" and match and not match.group(2).startswith("docker.io/") \
                    and match.group(1) not in names:
                names.append(match.group(1))
    return names


def podman_registries(opts: Options, aliases: list[str] = ()) -> str:
    lines = ["# written by check-lab provisioning (LAB_REGISTRY_MIRROR, LAB_INSECURE_REGISTRY)",
             "# Short names (ubuntu:18.04, as the course types them) are Docker Hub's, as on Docker.",
             'unqualified-search-registries = ["docker.io"]']
    insecure = {registry_location(r)[0] for r in opts.insecure_registry}
    if opts.registry_mirror:
        lines += ["", "[[registry]]", 'prefix = "docker.io"', 'location = "docker.io"']
        for url in opts.registry_mirror:
            location, http = registry_location(url)
            lines += ["[[registry.mirror]]", f'location = "{location}"',
                      f"insecure = {'true' if http or location in insecure else 'false'}"]
    mirrors = {registry_location(url)[0] for url in opts.registry_mirror}
    for location in sorted(insecure - mirrors):
        lines += ["", "[[registry]]", f'location = "{location}"', "insecure = true"]
    if aliases:  # the course's `docker run hello-world` means Docker Hub's hello-world, as under Docker
        lines += ["", "# Short names the distribution aliases elsewhere, on Docker Hub as under Docker.", "[aliases]"]
        lines += [f'"{name}" = "docker.io/{name if "/" in name else "library/" + name}"' for name in aliases]
    return "\n".join(lines) + "\n"


def step_podman_config(opts: Options) -> tuple[str, str]:
    found = [path for pattern in PODMAN_REGISTRY_FILES for path in sorted(glob.glob(pattern))
             if path not in (PODMAN_REGISTRIES, PODMAN_REGISTRIES_OLD)]
    changed = write_file(PODMAN_REGISTRIES, podman_registries(opts, foreign_aliases(found)))
    if os.path.exists(PODMAN_REGISTRIES_OLD):
        os.remove(PODMAN_REGISTRIES_OLD)
        changed = True
    if not os.path.exists(PODMAN_NODOCKER):
        write_file(PODMAN_NODOCKER, "")
        changed = True
    what = f"mirror {', '.join(opts.registry_mirror)}" if opts.registry_mirror else "no registry mirror"
    return ("changed" if changed else "unchanged"), f"{PODMAN_REGISTRIES} ({what})"


def subid_ranges(path: str) -> list[tuple[str, int, int]]:
    out = []
    try:
        with open(path) as fh:
            for line in fh:
                fields = line.strip().split(":")
                if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                    out.append((fields[0], int(fields[1]), int(fields[2])))
    except FileNotFoundError:
        pass
    return out


def step_user_namespaces(opts: Options) -> tuple[str, str]:
    """The login user's subordinate IDs (a rootless Podman maps a container's users onto them) and the TUN
    device its containers' network goes through."""
    try:
        account = pwd.getpwnam(opts.user)
    except KeyError:
        raise StepFailed(f"user {opts.user!r} does not exist") from None
    if not os.path.exists(TUN):
        raise StepFailed(f"no {TUN}: rootless containers would have no network (a container VM's init makes it)")
    added = []
    for path in SUBID_FILES:
        ranges = subid_ranges(path)
        if any(name in (opts.user, str(account.pw_uid)) for name, _start, _count in ranges):
            continue
        start = max([100000] + [first + count for _name, first, count in ranges])
        flag = "--add-subuids" if path.endswith("subuid") else "--add-subgids"
        proc = sh(["usermod", flag, f"{start}-{start + SUBID_COUNT - 1}", opts.user])
        if proc.returncode != 0:
            raise StepFailed(f"usermod {flag} failed: {last_line(proc.stderr)}")
        added.append(f"{path} {start}+{SUBID_COUNT}")
    if added:
        # A store made before the user had these IDs must learn them.
        sh(["runuser", "-l", opts.user, "-c", "podman system migrate"], timeout=120)
        return "changed", f"{opts.user}'s subordinate IDs: {', '.join(added)}"
    return "unchanged", f"{opts.user} has subordinate user and group IDs; {TUN} is there"


def podman_info(user: str) -> dict:
    proc = sh(["runuser", "-l", user, "-c", "docker info --format '{{json .}}'"], timeout=120)
    if proc.returncode != 0:
        raise StepFailed(f"{user} cannot use docker (podman): {last_line(proc.stderr)}")
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise StepFailed(f"docker info (podman) printed no JSON for {user}: {proc.stdout[:80]!r}") from None


def step_podman_verify(opts: Options) -> tuple[str, str]:
    info = podman_info(opts.user)
    version = (info.get("version") or {}).get("Version")
    if not version or "store" not in info:
        raise StepFailed(f"docker info for {opts.user} is not Podman's (is podman-docker installed?)")
    rootless = bool(((info.get("host") or {}).get("security") or {}).get("rootless"))
    driver = (info.get("store") or {}).get("graphDriverName")
    mirrors = [m.get("Location") for m in ((info.get("registries") or {}).get("docker.io") or {}).get("Mirrors") or []]
    wanted = [registry_location(url)[0] for url in opts.registry_mirror]
    if any(m not in mirrors for m in wanted):
        raise StepFailed(f"Podman's registry mirrors for docker.io are {mirrors}, wanted {wanted}")
    return "unchanged", (f"Podman {version}{' (rootless)' if rootless else ''}, {driver} storage driver, usable by "
                         f"{opts.user} as docker" + (f", mirror {', '.join(wanted)}" if wanted else ""))


# The machine's own steps, whichever engine follows.
MACHINE_STEPS = [
    ("apt-proxy", lambda o, s: step_apt_proxy(o)),
    ("hosts", lambda o, s: step_hosts(o)),
    ("machine-id", lambda o, s: step_machine_id(o)),
]

STEPS = MACHINE_STEPS + [
    ("engine-installed", step_engine_installed),
    ("builder-installed", lambda o, s: step_builder_installed(o)),
    ("compose-installed", lambda o, s: step_compose_installed(o)),
    ("tools-installed", lambda o, s: step_tools_installed(o)),
    ("daemon-config", step_daemon_config),
    ("builder-default", lambda o, s: step_builder_default(o)),
    ("daemon-running", step_daemon_running),
    ("user-in-docker-group", lambda o, s: step_user_in_docker_group(o)),
    ("engine-verified", lambda o, s: step_verify(o)),
]

# LAB_ENGINE=podman: no daemon to configure or start, no docker group. (Compose for Podman is not installed:
# lab 13's docker-compose needs a Docker engine.)
PODMAN_STEPS = MACHINE_STEPS + [
    ("engine-installed", step_podman_installed),
    ("tools-installed", lambda o, s: step_tools_installed(o)),
    ("podman-config", lambda o, s: step_podman_config(o)),
    ("user-namespaces", lambda o, s: step_user_namespaces(o)),
    ("engine-verified", lambda o, s: step_podman_verify(o)),
]


def provision(opts: Options, report=print) -> list[Outcome]:
    state: dict = {}
    outcomes = []
    for name, fn in (PODMAN_STEPS if opts.engine == "podman" else STEPS):
        started = time.monotonic()
        try:
            status, detail = fn(opts, state)
        except StepFailed as exc:
            status, detail = "failed", str(exc)
        outcome = Outcome(name, status, detail, round(time.monotonic() - started, 3))
        outcomes.append(outcome)
        report(outcome)
        if status == "failed":
            break
    return outcomes


def print_outcome(outcome: Outcome) -> None:
    print(f"[{outcome.status:>9}] {outcome.step}: {outcome.detail}", flush=True)


def print_json(outcome: Outcome) -> None:
    print(json.dumps(asdict(outcome)), flush=True)


def main(argv: list[str]) -> int:
    as_json = "--json" in argv
    if os.geteuid() != 0:
        print("provision: run as root", file=sys.stderr)
        return 2
    try:
        opts = Options.from_env(dict(os.environ))
    except StepFailed as exc:
        outcome = Outcome("options", "failed", str(exc))
        (print_json if as_json else print_outcome)(outcome)
        return 1
    outcomes = provision(opts, print_json if as_json else print_outcome)
    summary = {"package_manager_calls": PACKAGE_CALLS}
    if as_json:
        print(json.dumps({"summary": summary}), flush=True)
    elif PACKAGE_CALLS:
        print(f"[  summary] package manager called {len(PACKAGE_CALLS)} time(s)", flush=True)
    return 1 if outcomes and outcomes[-1].status == "failed" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
