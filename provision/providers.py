"""Which Vagrant provider to use when none is named, and why; which box each provider boots."""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import platform
import shutil
import subprocess
from pathlib import Path

BOXES_FILE = Path(__file__).resolve().parent / "boxes.json"
KVM_GET_API_VERSION = 0xAE00


# VirtualBox >= 6.1.28 (Linux, macOS) lets host-only networks use only the ranges its networks.conf lists,
# by default 192.168.56.0/21.
VBOX_NETWORKS_CONF = Path("/etc/vbox/networks.conf")
VBOX_DEFAULT_RANGES = ("192.168.56.0/21",)
SWARM_HOSTS = {"swarmmanager": 100, "swarmnode1": 101, "swarmnode2": 102}


def machine_address(name: str | None, settings: dict[str, str]) -> str | None:
    """The private address the Vagrantfile gives a machine (same rule: LAB_SUBNET, LAB_ADDRESS), or None."""
    subnet = settings.get("LAB_SUBNET") or "192.168.135"
    if name in SWARM_HOSTS:
        return f"{subnet}.{SWARM_HOSTS[name]}"
    if name in (None, "default", "docker-vm"):
        address = settings.get("LAB_ADDRESS") or f"{subnet}.10"
        return None if address == "none" else address
    return None


def host_only_ranges(conf: Path = VBOX_NETWORKS_CONF) -> list:
    """The host-only ranges VirtualBox allows: the `* RANGE …` lines of its networks.conf, else its default."""
    if not conf.is_file():
        return [ipaddress.ip_network(r) for r in VBOX_DEFAULT_RANGES]
    ranges = []
    for line in conf.read_text(errors="replace").splitlines():
        words = line.split("#", 1)[0].split()
        if words[:1] == ["*"]:
            for word in words[1:]:
                try:
                    ranges.append(ipaddress.ip_network(word, strict=False))
                except ValueError:
                    continue
    return ranges


def virtualbox_version() -> tuple[int, ...] | None:
    """VirtualBox's version (`VBoxManage --version`, e.g. 7.0.20r163906), or None when it cannot be read."""
    if not shutil.which("VBoxManage"):
        return None
    try:
        out = subprocess.run(["VBoxManage", "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"\s*(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(n) for n in match.groups()) if match else None


def virtualbox_network_problem(address: str | None, conf: Path = VBOX_NETWORKS_CONF,
                               version: tuple[int, ...] | None = None, system: str | None = None) -> str | None:
    """Why VirtualBox would refuse the machine's private address, in one line, or None."""
    if not address or (system or platform.system()) == "Windows":
        return None
    if version is not None and version < (6, 1, 28):
        return None
    ranges = host_only_ranges(conf)
    ip = ipaddress.ip_address(address)
    if any(ip in r for r in ranges):
        return None
    allowed = ", ".join(str(r) for r in ranges) or "none"
    net = ipaddress.ip_network(f"{address}/24", strict=False)
    return (f"VirtualBox allows host-only addresses only in {allowed} ({conf}"
            f"{'' if conf.is_file() else ' is missing'}), not {address}: add the line `* {net}` to {conf} "
            f"(as root), or set LAB_SUBNET (and LAB_ADDRESS) to a range it allows")


def arch() -> str:
    return "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "amd64"


def box_for(provider: str, settings: dict[str, str]) -> str | None:
    """The box the Vagrantfile will ask for (same rule: LAB_BOX_<PROVIDER>, LAB_BOX, boxes.json)."""
    if provider == "docker":
        return None
    boxes = json.loads(BOXES_FILE.read_text())
    return (settings.get(f"LAB_BOX_{provider.upper()}") or settings.get("LAB_BOX")
            or boxes.get(provider, {}).get(arch()))


def kvm_usable() -> tuple[bool, str]:
    """Whether hardware virtualisation works for a full VM here."""
    if Path("/sys/module/kvm_pvm").exists():
        return False, "/dev/kvm here is KVM-PVM, under which full VMs hang"
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError as exc:
        return False, f"/dev/kvm is not usable ({exc.strerror})"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as exc:
        return False, f"/dev/kvm does not answer ({exc.strerror})"
    finally:
        os.close(fd)
    return (version == 12, "KVM works" if version == 12 else f"unexpected KVM API version {version}")


def docker_reachable(env: dict | None = None) -> tuple[bool, str]:
    if not shutil.which("docker"):
        return False, "no docker client"
    proc = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True,
                          timeout=30, env=env)
    if proc.returncode != 0:
        return False, "no Docker engine answers"
    host = (env or os.environ).get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return True, f"Docker {proc.stdout.strip()} answers at {host}"


def choose(plugins: list[str], env: dict | None = None) -> tuple[str, str]:
    """(provider, reason): VirtualBox if present, else libvirt if KVM works, else a container VM."""
    reasons = []
    if shutil.which("VBoxManage"):
        return "virtualbox", "VirtualBox is installed"
    reasons.append("no VirtualBox")
    ok, why = kvm_usable()
    if ok and "vagrant-libvirt" in plugins:
        return "libvirt", f"{why} and vagrant-libvirt is installed"
    reasons.append(why if not ok else "no vagrant-libvirt plugin")
    ok, why = docker_reachable(env)
    if ok:
        return "docker", "; ".join(reasons) + f"; {why}: a container VM"
    reasons.append(why)
    raise LookupError("no provider can run the lab machine here: " + "; ".join(reasons)
                      + " (install VirtualBox, or libvirt with vagrant-libvirt and KVM, or Docker)")
