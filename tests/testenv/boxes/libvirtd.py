#!/usr/bin/env python3
"""Start and stop libvirt by hand (no systemd) for vagrant-libvirt test VMs under QEMU/TCG.

    python3 tests/testenv/boxes/libvirtd.py start    # virtlogd + libvirtd (unless running), the storage pool
    python3 tests/testenv/boxes/libvirtd.py status
    python3 tests/testenv/boxes/libvirtd.py stop [--force]

`start` starts `virtlogd -d` and `libvirtd -d` (not `-l`: "Unable to initialize network sockets") only if their
sockets do not answer already, with their PID files under RUN (/run/check-lab-testenv, or
$CHECK_LAB_TESTENV_RUN): a daemon is "ours" when RUN holds its PID file and that PID is still that daemon.
It then makes sure the storage pool `default` (a dir pool, /var/lib/libvirt/images) exists and runs, since
vagrant-libvirt uploads boxes into it, and that the management network MGMT_NET runs: an isolated libvirt
network (no <forward>: no NAT, no forwarding, no default route handed out) with DHCP, whose DHCP server also
hands out one classless static route (option 121): the host registry's address (REGISTRY_ROUTE, the
172.29.107.1 of the cltest0 bridge) via the host's address on this network. The host answers for that address
itself (no forwarding involved), so the VMs reach the registry at the same URL as the container VMs do. The
network's name server forwards every query to the test environment's (DNS_FORWARDER, that same address), as
the container VMs ask it directly: the download hosts a lab fetches from (lab 17's JDKs) are its stand-in
server there, and every other name is unknown. A network defined without that forwarder is defined again.
Use it with `lv.management_network_name = MGMT_NET`, `lv.management_network_address = MGMT_CIDR`,
`lv.management_network_mode = "none"` and `lv.management_network_keep = true` (else `vagrant destroy`
undefines it).

`stop` ends only what `start` started, by PID. libvirtd leaves QEMU processes and the networks' dnsmasq and
bridges running when it exits, so before it goes `stop` destroys the active networks (the management networks
vagrant-libvirt made) and refuses to go on while domains run, unless --force (then it destroys them too);
after it, the empty LIBVIRT_* iptables chains libvirtd made. The definitions of the pool and the network, the
box images in the pool and libvirt's state stay.

Without libvirt-daemon-system (which would need systemd or sysv scripts) a few things are missing;
prepare() adds them: the directories under /var/log, /var/lib, /var/cache; the `libvirt-qemu` system user (the
QEMU driver refuses to start without the user it was built for, even when qemu.conf names another); and,
if there is none, an /etc/libvirt/qemu.conf that runs QEMU as root without a security driver.

Packages: libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients dnsmasq-base qemu-system-x86 qemu-utils
(all --no-install-recommends), plus vagrant-libvirt for Vagrant. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

RUN = Path(os.environ.get("CHECK_LAB_TESTENV_RUN", "/run/check-lab-testenv"))
URI = "qemu:///system"
POOL = "default"
POOL_DIR = Path("/var/lib/libvirt/images")
QEMU_CONF = Path("/etc/libvirt/qemu.conf")
QEMU_CONF_TEXT = """\
# Written by tests/testenv/boxes/libvirtd.py (check-lab test environment). libvirt-daemon-system is not
# installed: QEMU runs as root, without a security driver (the host has no AppArmor), TCG only.
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
"""
MGMT_NET = "check-lab-mgmt"
MGMT_BRIDGE = "clvirt0"
MGMT_HOST_IP = os.environ.get("CHECK_LAB_LIBVIRT_HOST_IP", "192.168.121.1")  # vagrant-libvirt's default /24
MGMT_CIDR = MGMT_HOST_IP.rsplit(".", 1)[0] + ".0/24"
REGISTRY_ROUTE = os.environ.get("CHECK_LAB_LIBVIRT_ROUTE", "172.29.107.1/32")  # the testenv registry's host
DNS_FORWARDER = os.environ.get("CHECK_LAB_LIBVIRT_DNS", REGISTRY_ROUTE.split("/")[0])  # the testenv's name server
MGMT_NET_XML = """\
<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>
  <name>{name}</name>
  <bridge name='{bridge}' stp='off' delay='0'/>
  <dns>
    <forwarder addr='{dns}'/>
  </dns>
  <ip address='{host_ip}' netmask='255.255.255.0'>
    <dhcp>
      <range start='{prefix}.10' end='{prefix}.254'/>
    </dhcp>
  </ip>
  <dnsmasq:options>
    <dnsmasq:option value='dhcp-option=option:classless-static-route,{route},{host_ip}'/>
  </dnsmasq:options>
</network>
"""
DIRS = [Path(p) for p in ("/var/log/libvirt/qemu", "/var/lib/libvirt/qemu", "/var/lib/libvirt/images",
                          "/var/lib/libvirt/dnsmasq", "/var/cache/libvirt", "/run/libvirt")]


class Daemon:
    def __init__(self, name: str, sock: str) -> None:
        self.name = name
        self.binary = f"/usr/sbin/{name}"
        self.sock = Path(sock)
        self.pidfile = RUN / f"{name}.pid"

    def answers(self) -> bool:
        """Whether some instance of the daemon (ours or not) accepts connections on its socket."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            try:
                s.connect(str(self.sock))
                return True
            except OSError:
                return False

    def own_pid(self) -> int | None:
        """The PID of the instance we started, if it still runs (the PID file must name this daemon)."""
        try:
            pid = int(self.pidfile.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except (OSError, ValueError, IndexError):
            return None
        return pid if os.path.basename(cmdline.decode(errors="replace")) == self.name else None


VIRTLOGD = Daemon("virtlogd", "/run/libvirt/virtlogd-sock")
LIBVIRTD = Daemon("libvirtd", "/run/libvirt/libvirt-sock")


def log(msg: str) -> None:
    print(f"libvirtd: {msg}", flush=True)


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise RuntimeError(f"virsh {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def prepare() -> None:
    """What libvirt-daemon-system would have set up (idempotent)."""
    missing = [b for b in ("/usr/sbin/libvirtd", "/usr/sbin/virtlogd", "/usr/bin/virsh") if not os.path.exists(b)]
    if missing or shutil.which("qemu-system-x86_64") is None:
        raise RuntimeError("install: apt-get install --no-install-recommends libvirt-daemon "
                           "libvirt-daemon-driver-qemu libvirt-clients dnsmasq-base qemu-system-x86 qemu-utils")
    for d in DIRS:
        d.mkdir(parents=True, exist_ok=True)
    RUN.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["getent", "group", "libvirt-qemu"], capture_output=True).returncode != 0:
        subprocess.run(["groupadd", "--system", "libvirt-qemu"], check=True)
    if subprocess.run(["getent", "passwd", "libvirt-qemu"], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--gid", "libvirt-qemu", "--home-dir", "/var/lib/libvirt",
                        "--no-create-home", "--shell", "/usr/sbin/nologin", "libvirt-qemu"], check=True)
    if not QEMU_CONF.exists():
        QEMU_CONF.write_text(QEMU_CONF_TEXT)


def _start(daemon: Daemon, timeout: float = 60) -> None:
    if daemon.answers():
        pid = daemon.own_pid()
        log(f"{daemon.name} already running" + (f" (ours, PID {pid})" if pid else " (not started by us: left alone)"))
        return
    daemon.pidfile.unlink(missing_ok=True)
    t0 = time.monotonic()
    # -d: it daemonises (new session, cwd /) and writes the PID file; the parent returns at once.
    subprocess.run([daemon.binary, "-d", "-p", str(daemon.pidfile)], check=True, cwd="/",
                   stdin=subprocess.DEVNULL)
    while not daemon.answers():
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"{daemon.name} did not come up in {timeout:.0f} s; see /var/log/libvirt/"
                               f"{daemon.name}.log")
        time.sleep(0.5)
    log(f"{daemon.name} started (PID {daemon.own_pid()}) in {time.monotonic() - t0:.1f} s")


def ensure_pool() -> None:
    info = virsh("pool-info", POOL, check=False)
    if info.returncode != 0:
        POOL_DIR.mkdir(parents=True, exist_ok=True)
        virsh("pool-define-as", POOL, "dir", "--target", str(POOL_DIR))
        virsh("pool-autostart", POOL)
        info = virsh("pool-info", POOL)
        log(f"storage pool {POOL} defined at {POOL_DIR}")
    if "running" not in info.stdout:
        virsh("pool-start", POOL)
        log(f"storage pool {POOL} started")


def ensure_network() -> None:
    """The isolated management network with DHCP and a route to the registry's host address (see above)."""
    defined = virsh("net-dumpxml", "--inactive", MGMT_NET, check=False)
    if defined.returncode == 0 and f"<forwarder addr='{DNS_FORWARDER}'/>" not in defined.stdout:
        virsh("net-destroy", MGMT_NET, check=False)  # (an older definition, without the name server's forwarder)
        virsh("net-undefine", MGMT_NET)
        log(f"network {MGMT_NET}: defined again (its name server now forwards to {DNS_FORWARDER})")
    if virsh("net-info", MGMT_NET, check=False).returncode != 0:
        xml = MGMT_NET_XML.format(name=MGMT_NET, bridge=MGMT_BRIDGE, host_ip=MGMT_HOST_IP,
                                  prefix=MGMT_HOST_IP.rsplit(".", 1)[0], route=REGISTRY_ROUTE, dns=DNS_FORWARDER)
        path = RUN / f"{MGMT_NET}.xml"
        path.write_text(xml)
        try:
            virsh("net-define", str(path))
        finally:
            path.unlink()
        log(f"network {MGMT_NET} defined: {MGMT_CIDR} on {MGMT_BRIDGE}, isolated, route {REGISTRY_ROUTE}")
    if not re.search(r"^Active:\s+yes", virsh("net-info", MGMT_NET).stdout, re.M):
        virsh("net-start", MGMT_NET)
        log(f"network {MGMT_NET} started")


def start() -> None:
    prepare()
    _start(VIRTLOGD)
    _start(LIBVIRTD)
    ensure_pool()
    ensure_network()


def _kill(daemon: Daemon, timeout: float = 30) -> None:
    pid = daemon.own_pid()
    if pid is None:
        log(f"{daemon.name}: not started by us, nothing to stop")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if Path(f"/proc/{pid}").exists():
        log(f"{daemon.name} (PID {pid}) ignored SIGTERM for {timeout:.0f} s: SIGKILL")
        os.kill(pid, signal.SIGKILL)
    daemon.pidfile.unlink(missing_ok=True)
    log(f"{daemon.name} (PID {pid}) stopped")


def remove_empty_firewall_chains() -> None:
    """libvirtd leaves its top-level LIBVIRT_* chains (and the jumps to them) behind: drop the empty ones."""
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) is None:
            continue
        for table in ("filter", "nat", "mangle"):
            rules = subprocess.run([tool, "-w", "-t", table, "-S"], capture_output=True, text=True).stdout
            lines = rules.splitlines()
            chains = [ln.split()[1] for ln in lines if ln.startswith("-N LIBVIRT_")]
            for chain in chains:
                if any(ln.startswith(f"-A {chain} ") for ln in lines):
                    continue  # not empty: leave it
                for ln in lines:
                    parts = ln.split()
                    if parts[:1] == ["-A"] and parts[2:] == ["-j", chain]:
                        subprocess.run([tool, "-w", "-t", table, "-D", parts[1], "-j", chain], check=False)
                subprocess.run([tool, "-w", "-t", table, "-X", chain], check=False)


def stop(force: bool = False) -> None:
    ours = LIBVIRTD.own_pid() is not None
    if ours:
        running = virsh("list", "--name", check=False).stdout.split()
        if running and not force:
            raise RuntimeError(f"domains still running: {', '.join(running)} (vagrant destroy, or stop --force)")
        for dom in running:
            virsh("destroy", dom, check=False)
            log(f"domain {dom} destroyed")
        # Active networks keep their bridge and dnsmasq after libvirtd exits: take them down first.
        for net in virsh("net-list", "--name", check=False).stdout.split():
            virsh("net-destroy", net, check=False)
            log(f"network {net} stopped")
    _kill(LIBVIRTD)
    if ours:
        remove_empty_firewall_chains()
    _kill(VIRTLOGD)


def status() -> int:
    for d in (VIRTLOGD, LIBVIRTD):
        pid = d.own_pid()
        state = "answers" if d.answers() else "down"
        log(f"{d.name}: {state}" + (f", ours (PID {pid})" if pid else ""))
    if LIBVIRTD.answers():
        print(virsh("list", "--all", check=False).stdout.rstrip() or "(no domains)")
        print(virsh("net-list", "--all", check=False).stdout.rstrip() or "(no networks)")
        print(virsh("pool-list", "--all", check=False).stdout.rstrip() or "(no pools)")
    return 0 if LIBVIRTD.answers() else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("start", help="start virtlogd and libvirtd unless running; create the storage pool")
    p_stop = sub.add_parser("stop", help="stop what start started (by PID)")
    p_stop.add_argument("--force", action="store_true", help="destroy running domains first")
    sub.add_parser("status")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "start":
            start()
        elif args.cmd == "stop":
            stop(args.force)
        else:
            return status()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"libvirtd: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
