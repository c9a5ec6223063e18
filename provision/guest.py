#!/usr/bin/env python3
"""Make a VM Docker-ready: the guest side of provisioning.

Runs as root inside the VM, with the Python standard library only (a fresh Ubuntu or Debian box has
python3 and nothing else we could rely on). `vagrant up` / `vagrant provision` run this file through
the Vagrantfile's shell provisioner; settings come from LAB_* environment variables (see OPTIONS).

Every step is idempotent: check, act only if needed, verify; it reports `changed`, `unchanged` or
`failed` with a reason. A second run reports every step `unchanged` and calls no package manager.
"""

from __future__ import annotations

import json
import os
import pwd
import grp
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

DAEMON_JSON = "/etc/docker/daemon.json"

# name -> (environment variable, default, help)
OPTIONS = {
    "registry_mirror": ("LAB_REGISTRY_MIRROR", "", "registry mirror URL(s) for Docker pulls, comma-separated"),
    "insecure_registry": ("LAB_INSECURE_REGISTRY", "", "registries reached over plain HTTP, comma-separated"),
    "apt_proxy": ("LAB_APT_PROXY", "", "an HTTP proxy for apt, e.g. a classroom apt-cacher-ng"),
    "storage_driver": ("LAB_STORAGE_DRIVER", "overlay2", "the engine's storage driver"),
    "user": ("LAB_USER", "vagrant", "the login user that must be able to run docker"),
}


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
    storage_driver: str = "overlay2"
    user: str = "vagrant"

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> "Options":
        values = {}
        for name, (var, default, _help) in OPTIONS.items():
            raw = environ.get(var, default).strip()
            if name in ("registry_mirror", "insecure_registry"):
                values[name] = [v.strip() for v in raw.split(",") if v.strip()]
            else:
                values[name] = raw
        return cls(**values)


def sh(argv: list[str], *, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
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


# ------------------------------------------------------------------------------------------------ the steps


def step_engine_installed(opts: Options) -> tuple[str, str]:
    if shutil.which("dockerd") and shutil.which("docker"):
        return "unchanged", "dockerd and docker are installed"
    if not shutil.which("apt-get"):
        raise StepFailed("no Docker engine and no apt-get to install one")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    proxy = ["-o", f"Acquire::http::Proxy={opts.apt_proxy}"] if opts.apt_proxy else []
    for argv in (["apt-get", *proxy, "update"],
                 ["apt-get", *proxy, "install", "-y", "--no-install-recommends", "docker.io"]):
        proc = sh(argv, timeout=1800, env=env)
        if proc.returncode != 0:
            raise StepFailed(f"{' '.join(argv[:2])} … failed: {last_line(proc.stderr or proc.stdout)}")
    if not shutil.which("dockerd"):
        raise StepFailed("docker.io installed, but dockerd is not on PATH")
    return "changed", "installed docker.io"


def desired_daemon_config(opts: Options, current: dict) -> dict:
    """The current daemon.json with our keys set; keys we do not manage are kept as they are."""
    config = dict(current)
    config["storage-driver"] = opts.storage_driver
    for key, values in (("registry-mirrors", opts.registry_mirror), ("insecure-registries", opts.insecure_registry)):
        if values:
            config[key] = values
        else:
            config.pop(key, None)
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
    current = read_daemon_json()
    desired = desired_daemon_config(opts, current)
    if desired == current:
        return "unchanged", f"{DAEMON_JSON} as wanted"
    os.makedirs(os.path.dirname(DAEMON_JSON), exist_ok=True)
    tmp = DAEMON_JSON + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(desired, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, DAEMON_JSON)
    state["config_changed"] = True
    changed = sorted(k for k in set(desired) | set(current) if desired.get(k) != current.get(k))
    return "changed", f"wrote {DAEMON_JSON} ({', '.join(changed)})"


def has_systemd() -> bool:
    return os.path.isdir("/run/systemd/system")


def engine_answers() -> bool:
    return sh(["docker", "info", "--format", "{{.ID}}"], timeout=30).returncode == 0


# Without systemd (a container VM), dockerd runs under start-stop-daemon with the pid files of Debian's
# init script, so `service docker status|stop` keep working. The init script itself cannot be used there:
# it raises the open-files limit, which a container without CAP_SYS_RESOURCE may not do.
SSD_PIDFILE = "/var/run/docker-ssd.pid"


def plain_service(action: str) -> None:
    if action in ("stop", "restart") and os.path.exists(SSD_PIDFILE):
        proc = sh(["start-stop-daemon", "--stop", "--pidfile", SSD_PIDFILE, "--remove-pidfile", "--retry", "20"])
        if proc.returncode not in (0, 1):  # 1: was not running
            raise StepFailed(f"stopping dockerd failed: {last_line(proc.stderr or proc.stdout)}")
    if action in ("start", "restart"):
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        with open("/var/log/docker.log", "ab") as log:
            proc = subprocess.run(["start-stop-daemon", "--start", "--background", "--no-close", "--exec", dockerd,
                                   "--pidfile", SSD_PIDFILE, "--make-pidfile", "--", "-p", "/var/run/docker.pid"],
                                  stdout=log, stderr=log, timeout=60)
        if proc.returncode != 0:
            raise StepFailed(f"starting dockerd failed (exit {proc.returncode}); see /var/log/docker.log")


def service(action: str) -> None:
    if not has_systemd():
        plain_service(action)
        return
    argv = ["systemctl", action, "docker"]
    proc = sh(argv, timeout=120)
    if proc.returncode != 0:
        raise StepFailed(f"{' '.join(argv)} failed: {last_line(proc.stderr or proc.stdout)}")


def wait_for_engine(timeout: float = 60) -> None:
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
    service("restart" if running else "start")
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
    driver = info.get("Driver")
    if driver != opts.storage_driver:
        raise StepFailed(f"the engine uses the {driver} storage driver, not {opts.storage_driver}")
    mirrors = (info.get("RegistryConfig") or {}).get("Mirrors") or []
    wanted = [m.rstrip("/") + "/" for m in opts.registry_mirror]
    if any(m not in mirrors for m in wanted):
        raise StepFailed(f"registry mirrors are {mirrors}, wanted {wanted}")
    return "unchanged", f"Docker {info.get('ServerVersion')} with {driver}" + (
        f", mirror {', '.join(opts.registry_mirror)}" if opts.registry_mirror else "")


STEPS = [
    ("engine-installed", lambda o, s: step_engine_installed(o)),
    ("daemon-config", step_daemon_config),
    ("daemon-running", step_daemon_running),
    ("user-in-docker-group", lambda o, s: step_user_in_docker_group(o)),
    ("engine-verified", lambda o, s: step_verify(o)),
]


def provision(opts: Options, report=print) -> list[Outcome]:
    state: dict = {}
    outcomes = []
    for name, fn in STEPS:
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
    print(json.dumps(outcome.__dict__), flush=True)


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("provision: run as root", file=sys.stderr)
        return 2
    opts = Options.from_env(dict(os.environ))
    outcomes = provision(opts, print_json if "--json" in argv else print_outcome)
    return 1 if outcomes and outcomes[-1].status == "failed" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
