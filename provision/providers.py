"""Which Vagrant provider to use when none is named, and why; which box each provider boots."""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

BOXES_FILE = Path(__file__).resolve().parent / "boxes.json"
KVM_GET_API_VERSION = 0xAE00


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
