#!/usr/bin/env python3
"""Prove a box: add it, `vagrant up --provider=libvirt` under TCG, check Docker in it, destroy it; timed.

    smoke.py SUITE [--box FILE] [--dir /tmp/lvtest-SUITE] [--keep] [--no-add]

Starts libvirt first (libvirtd.py start; it is left running: `libvirtd.py stop` ends it). The project folder
gets Vagrantfile.tcg. `vagrant box add --force --name check-lab/SUITE` replaces the box; its old images in the
storage pool are deleted first (vagrant-libvirt names the uploaded copy of a version-less box after the box's
timestamp, so a re-added box gets a new volume and the old ones would pile up). In the VM: the engine answers (`docker version`), a container runs from an image
imported from a few of the guest's own files (no registry needed), the route to the testenv registry
(172.29.107.1:5000, via the management network's DHCP route) and whether its /v2/ answers.
Prints a JSON summary at the end. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import build_box  # noqa: E402
import libvirtd  # noqa: E402

VAGRANT_ENV = {**os.environ, "VAGRANT_CHECKPOINT_DISABLE": "1", "VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1"}

# Guest checks: name -> shell command run by `vagrant ssh -c`.
TINY_IMAGE = ("sudo tar -C / -c bin lib lib64 usr/bin/echo usr/lib/x86_64-linux-gnu/libc.so.6 "
              "usr/lib64/ld-linux-x86-64.so.2 usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 | sudo docker import - check-lab/tiny:1 >/dev/null && "
              "sudo docker run --rm check-lab/tiny:1 /usr/bin/echo hello from a container")
CHECKS = {
    "system": "uname -r; . /etc/os-release; echo $PRETTY_NAME; systemctl is-system-running; ip -4 route",
    "docker version": "sudo docker version --format 'server {{.Server.Version}} api {{.Server.APIVersion}}'"
                      " && sudo docker info --format 'storage {{.Driver}} cgroup v{{.CgroupVersion}}'",
    "hello-world or version": "sudo docker run --rm hello-world 2>&1 | tail -2 || true; "
                              "sudo docker version --format '{{.Server.Version}}'",
    "docker run (imported image)": TINY_IMAGE,
    "registry route": "ip route get 172.29.107.1",
    "registry /v2/": "python3 -c \"import urllib.request as u; r = u.urlopen('http://172.29.107.1:5000/v2/', "
                     "timeout=10); print(r.status, r.headers.get('Docker-Distribution-Api-Version'))\"",
    "no default route": "! ip route | grep -q '^default' && echo no default route",
    "buildx": "sudo docker buildx version 2>&1 || true",
    "boot": "systemd-analyze || true; systemd-analyze blame | head -5",
}


def sh(argv: list[str], cwd: Path, timeout: float = 1800) -> tuple[int, str, float]:
    t0 = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=VAGRANT_ENV, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout)
    return proc.returncode, proc.stdout, round(time.monotonic() - t0, 1)


def step(name: str, argv: list[str], cwd: Path, summary: dict, *, must: bool = True) -> None:
    """Run a Vagrant command, its output streamed with the seconds since its start (progress bars dropped)."""
    print(f"--- {name}", flush=True)
    t0 = time.monotonic()
    with subprocess.Popen(argv, cwd=cwd, env=VAGRANT_ENV, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as proc:
        for line in proc.stdout:
            if "Progress:" not in line:
                print(f"{time.monotonic() - t0:6.1f}  {line.rstrip()}", flush=True)
    secs = round(time.monotonic() - t0, 1)
    summary["timings"][name] = secs
    print(f"--- {name}: exit {proc.returncode}, {secs} s", flush=True)
    if proc.returncode != 0 and must:
        raise SystemExit(f"smoke: {name} failed (exit {proc.returncode})")


def remove_stale_volumes(box: str) -> None:
    """Delete the pool copies of earlier versions of the box (vagrant-libvirt uploads one per box timestamp)."""
    prefix = box.replace("/", "-VAGRANTSLASH-") + "_vagrant_box_image_"
    vols = libvirtd.virsh("vol-list", libvirtd.POOL, check=False).stdout.split("\n")
    for line in vols:
        name = line.split()[0] if line.split() else ""
        if name.startswith(prefix):
            libvirtd.virsh("vol-delete", "--pool", libvirtd.POOL, name)
            print(f"smoke: deleted old pool volume {name}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", choices=sorted(build_box.SUITE_PACKAGES))
    parser.add_argument("--box", type=Path, help="box file (default: the cache's check-lab-SUITE.box)")
    parser.add_argument("--dir", type=Path, help="project folder (default /tmp/lvtest-SUITE)")
    parser.add_argument("--no-add", action="store_true", help="use the box Vagrant already has")
    parser.add_argument("--keep", action="store_true", help="leave the VM running")
    args = parser.parse_args(argv)
    box_name = f"check-lab/{args.suite}"
    box_file = args.box or build_box.CACHE / f"check-lab-{args.suite}.box"
    project = args.dir or Path(f"/tmp/lvtest-{args.suite}")
    summary: dict = {"suite": args.suite, "box": box_name, "timings": {}, "checks": {}}

    t0 = time.monotonic()
    libvirtd.start()
    summary["timings"]["libvirtd start"] = round(time.monotonic() - t0, 1)
    project.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "Vagrantfile.tcg", project / "Vagrantfile")
    VAGRANT_ENV["CL_BOX"] = box_name

    if not args.no_add:
        remove_stale_volumes(box_name)
        step("box add", ["vagrant", "box", "add", "--force", "--name", box_name, str(box_file)], project, summary)
    try:
        step("vagrant up", ["vagrant", "up", "--provider=libvirt"], project, summary)
        step("vagrant ssh-config", ["vagrant", "ssh-config"], project, summary)
        for name, command in CHECKS.items():
            rc, out, secs = sh(["vagrant", "ssh", "-c", command], project, timeout=600)
            summary["checks"][name] = {"exit": rc, "seconds": secs, "output": out.strip()}
            print(f"--- {name}: exit {rc}, {secs} s\n{out.rstrip()}", flush=True)
        if not args.keep:
            step("vagrant halt", ["vagrant", "halt"], project, summary, must=False)
    finally:
        if not args.keep:
            step("vagrant destroy", ["vagrant", "destroy", "-f"], project, summary, must=False)
    print(json.dumps(summary, indent=2))
    failed = [n for n, c in summary["checks"].items() if c["exit"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
