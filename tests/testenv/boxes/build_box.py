#!/usr/bin/env python3
"""Build a Vagrant box for the libvirt provider offline, from Debian's packages only.

    build_box.py SUITE [OUT.box] [--size-gb N] [--mirror URL] [--rebuild-rootfs] [--keep-work]

SUITE is `bookworm` or `trixie`. Without OUT the box goes to CACHE/check-lab-SUITE.box. Run as root.

The guest: `debootstrap --variant=minbase SUITE` with the cloud kernel, systemd, udev, dbus, openssh-server,
sudo, python3, docker.io (enabled, not configured: provision/guest.py does that), apparmor (without
apparmor_parser every `docker run` fails in an AppArmor-enabled guest) and iproute2; on trixie also docker-cli
and docker-buildx. systemd-networkd does DHCP on the first NIC (eth0: `net.ifnames=0`); a `vagrant` user with
NOPASSWD sudo and Vagrant's insecure public key; consoles on ttyS0 (GRUB, kernel, getty); SSH host keys (ECDSA,
Ed25519) made at first boot, an empty machine-id, apt's timers masked. The box's Vagrantfile sets the guest type
(debian), virtio disk and NIC, and no synced folder.

How the disk is made without partition loop devices (`losetup -P` makes none on these machines):
  1. an ext4 partition image straight from the rootfs directory: `mkfs.ext4 -d ROOTFS part.img`;
  2. a sparse raw disk with an MBR partition table (`sfdisk`), the partition image copied in at 1 MiB
     (only its data extents: SEEK_DATA/SEEK_HOLE);
  3. GRUB for BIOS without grub-install: `grub-mkimage -O i386-pc` makes core.img (modules and prefix built in),
     written to sectors 1.. (the gap before the partition), and the first 440 bytes of boot.img into the MBR.
     boot.img loads sector 1 by default and core.img's first sector (diskboot) then loads the rest from sector 2;
     grub-mkimage fills in its length;
  4. `qemu-img convert -c -O qcow2`, then a tar of metadata.json, Vagrantfile and box.img.

Caches, under CACHE (/var/lib/check-lab-testenv/cache/boxes, or $CHECK_LAB_TESTENV_STATE/cache/boxes):
  rootfs-SUITE-KEY.tar   the debootstrap result, KEY = hash of suite, mirror, variant and package list;
  check-lab-SUITE.box    the default output.
Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository's root on the path, for tests.testenv
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.testenv.mirrors import debian_mirror  # noqa: E402 (the machine's own Debian mirror)

STATE = Path(os.environ.get("CHECK_LAB_TESTENV_STATE", "/var/lib/check-lab-testenv"))
CACHE = STATE / "cache" / "boxes"
ARCH = "amd64"
VARIANT = "minbase"
GRUB_DIR = Path("/usr/lib/grub/i386-pc")
HOSTNAME = "check-lab"

# Packages installed by debootstrap (--include), per suite. Part of the rootfs cache key. curl: the public
# Ubuntu boxes the course's students use have it, and the course types it (labs 02, 10, 11).
COMMON_PACKAGES = [
    "linux-image-cloud-amd64", "initramfs-tools", "systemd-sysv", "udev", "dbus", "kmod",
    "openssh-server", "sudo", "python3", "docker.io", "apparmor", "iproute2", "procps", "curl",
]
SUITE_PACKAGES = {
    "bookworm": COMMON_PACKAGES,
    # trixie's docker.io only recommends the CLI; buildx makes BuildKit the default builder.
    "trixie": COMMON_PACKAGES + ["docker-cli", "docker-buildx"],
}
# Bump to invalidate every cached rootfs tarball (when the debootstrap stage itself changes).
ROOTFS_REV = 1

# The GRUB modules built into core.img: enough to read the ext4 partition, talk on the serial line and boot
# Linux. The rest are copied to /boot/grub/i386-pc in the guest and load on demand.
GRUB_MODULES = [
    "biosdisk", "part_msdos", "ext2", "normal", "configfile", "linux", "echo", "test",
    "serial", "terminal", "search", "search_fs_uuid",
]

MIB = 1024 * 1024
SECTOR = 512
PART_START = 2048  # sectors: the partition starts at 1 MiB; core.img lives in the gap before it

# Files written into the guest. {placeholders} are filled in by configure_rootfs().
NETWORK_UNIT = """\
# The first NIC (eth0: the kernel runs with net.ifnames=0) is Vagrant's management network: DHCP.
[Match]
Name=eth0

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
"""

# SSH host keys are made at first boot, ECDSA and Ed25519 only: under TCG an RSA 3072 key takes over a minute
# (measured: `ssh-keygen -A` 73 s, most of `vagrant up`); these two take well under a second.
HOSTKEYS_UNIT = """\
[Unit]
Description=Generate SSH host keys on first boot (the box ships none)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N "" -f /etc/ssh/ssh_host_ecdsa_key
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key

[Install]
WantedBy=multi-user.target ssh.service
"""

SSHD_HOSTKEYS_CONF = """\
# No RSA host key in this box (see check-lab-ssh-hostkeys.service).
HostKey /etc/ssh/ssh_host_ecdsa_key
HostKey /etc/ssh/ssh_host_ed25519_key
"""

GRUB_EARLY_CFG = """\
set root=(hd0,msdos1)
set prefix=(hd0,msdos1)/boot/grub
"""

GRUB_CFG = """\
# Written by tests/testenv/boxes/build_box.py (no grub package in the guest: edit by hand if needed).
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set default=0
set timeout=0
menuentry "Debian GNU/Linux {suite} (check-lab box)" {{
    linux {kernel} root=UUID={uuid} ro net.ifnames=0 console=tty0 console=ttyS0,115200n8
    initrd {initrd}
}}
"""

BOX_VAGRANTFILE = """\
# Box made by tests/testenv/boxes/build_box.py: Debian {suite}, built offline for the check-lab tests.
Vagrant.configure("2") do |config|
  # The guest has neither rsync nor an NFS client: share nothing unless the project's Vagrantfile says so.
  config.vm.synced_folder ".", "/vagrant", disabled: true
  # Saves Vagrant's guest detection (one SSH command per known guest OS: ~20 s under TCG).
  config.vm.guest = :debian
  config.vm.provider :libvirt do |lv|
    lv.disk_bus = "virtio"
    lv.nic_model_type = "virtio"
  end
end
"""


class BuildError(Exception):
    pass


# ---------------------------------------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(f"build_box: {msg}", flush=True)


def run(argv: list[str], *, input: str | None = None, quiet: bool = True, timeout: float = 3600,
        cwd: str | Path | None = None) -> str:
    """Run a command; raise BuildError with the tail of its output when it fails."""
    proc = subprocess.run([str(a) for a in argv], input=input, text=True, timeout=timeout, cwd=cwd,
                          stdout=subprocess.PIPE if quiet else None,
                          stderr=subprocess.STDOUT if quiet else None)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout or "").strip().splitlines()[-20:])
        raise BuildError(f"{' '.join(map(str, argv[:5]))} … failed (exit {proc.returncode})\n{tail}")
    return proc.stdout or ""


def chroot(root: Path, *argv: str, input: str | None = None) -> str:
    env_argv = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]
    return run(["chroot", root, *env_argv, *argv], input=input)


@contextlib.contextmanager
def timed(name: str, timings: dict):
    t0 = time.monotonic()
    yield
    timings[name] = round(time.monotonic() - t0, 1)
    log(f"{name}: {timings[name]} s")


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def check_tools() -> None:
    """Fail early, naming the Debian package that brings a missing tool."""
    needed = {
        "debootstrap": "debootstrap", "mkfs.ext4": "e2fsprogs", "e2fsck": "e2fsprogs", "sfdisk": "fdisk",
        "grub-mkimage": "grub-common", "qemu-img": "qemu-utils", "tar": "tar", "chroot": "coreutils",
    }
    missing = sorted({pkg for tool, pkg in needed.items() if shutil.which(tool) is None})
    if not (GRUB_DIR / "boot.img").exists():
        missing.append("grub-pc-bin")
    if missing:
        raise BuildError("missing tools; install: apt-get install --no-install-recommends " + " ".join(missing))
    if os.geteuid() != 0:
        raise BuildError("run as root (debootstrap, chroot and file ownership need it)")


def vagrant_public_key() -> str:
    """Vagrant's insecure public key, as shipped by Debian's vagrant package."""
    candidates = []
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["dpkg", "-L", "vagrant"], capture_output=True, text=True, check=True).stdout
        candidates = [line for line in out.splitlines() if line.endswith("keys/vagrant.pub")]
    candidates += glob.glob("/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub")
    for path in candidates:
        if os.path.isfile(path):
            return Path(path).read_text()
    raise BuildError("Vagrant's insecure public key not found (install the vagrant package)")


# ---------------------------------------------------------------------------------------------- rootfs


def rootfs_key(suite: str, mirror: str, packages: list[str]) -> str:
    spec = {"rev": ROOTFS_REV, "suite": suite, "mirror": mirror, "variant": VARIANT, "arch": ARCH,
            "packages": sorted(packages)}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def rootfs_tarball(suite: str, mirror: str, work: Path, rebuild: bool, timings: dict) -> Path:
    """The debootstrap result as a tarball, cached by suite + mirror + package list."""
    packages = SUITE_PACKAGES[suite]
    tarball = CACHE / f"rootfs-{suite}-{rootfs_key(suite, mirror, packages)}.tar"
    if tarball.exists() and not rebuild:
        log(f"rootfs: cached {tarball}")
        timings["debootstrap"] = 0.0
        return tarball
    target = work / "debootstrap"
    target.mkdir()
    with timed("debootstrap", timings):
        log(f"debootstrap {suite} from {mirror} with {len(packages)} packages (takes a few minutes)")
        run(["debootstrap", f"--variant={VARIANT}", f"--arch={ARCH}", "--components=main",
             "--include=" + ",".join(packages), suite, target, mirror], timeout=3600)
        # Downloaded .debs and package lists are not needed in the box.
        for deb in (target / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        for lst in (target / "var/lib/apt/lists").glob("*_*"):
            lst.unlink()
    with timed("rootfs tarball", timings):
        partial = tarball.with_suffix(".tar.partial")
        run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "-C", target,
             "-cpf", partial, "."])
        partial.rename(tarball)
    shutil.rmtree(target)
    log(f"rootfs: cached as {tarball} ({tarball.stat().st_size // MIB} MiB)")
    return tarball


def configure_rootfs(root: Path, suite: str, part_uuid: str) -> None:
    """Turn the debootstrap result into a Vagrant base box guest."""
    # Identity: a fixed hostname (Vagrant sets its own), no host resolv.conf, a machine-id made at first boot.
    write(root / "etc/hostname", HOSTNAME + "\n")
    write(root / "etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n"
                              "::1\tlocalhost ip6-localhost ip6-loopback\n")
    write(root / "etc/resolv.conf", "# no DNS: the check-lab test networks are isolated\n")
    write(root / "etc/machine-id", "", 0o444)
    with contextlib.suppress(FileNotFoundError):
        (root / "var/lib/dbus/machine-id").unlink()
    write(root / "etc/fstab", f"UUID={part_uuid}\t/\text4\terrors=remount-ro\t0\t1\n")

    # Network: DHCP on the first NIC with systemd-networkd.
    write(root / "etc/systemd/network/10-eth0.network", NETWORK_UNIT)

    # SSH: no host keys in the box (every VM would share them); made at first boot.
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    write(root / "etc/systemd/system/check-lab-ssh-hostkeys.service", HOSTKEYS_UNIT)
    write(root / "etc/ssh/sshd_config.d/10-check-lab-hostkeys.conf", SSHD_HOSTKEYS_CONF)

    # The vagrant user: password "vagrant" (Vagrant's convention, for the serial console), NOPASSWD sudo,
    # the insecure key (Vagrant replaces it with a key of its own at the first `vagrant up`).
    if "vagrant:" not in (root / "etc/passwd").read_text():
        chroot(root, "useradd", "--create-home", "--shell", "/bin/bash", "--user-group", "vagrant")
    chroot(root, "chpasswd", input="vagrant:vagrant\n")
    write(root / "etc/sudoers.d/vagrant", "vagrant ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    ssh_dir = root / "home/vagrant/.ssh"
    write(ssh_dir / "authorized_keys", vagrant_public_key(), 0o600)
    ssh_dir.chmod(0o700)
    chroot(root, "chown", "-R", "vagrant:vagrant", "/home/vagrant/.ssh")

    # Services: networkd and the host key generator on; docker stays as its package left it (enabled, not
    # configured); apt's daily timers off (no mirror reachable from the test networks, and TCG is slow).
    chroot(root, "systemctl", "enable", "systemd-networkd.service", "check-lab-ssh-hostkeys.service",
           "docker.service", "containerd.service", "ssh.service")
    timers = [t for t in ("apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer")
              if list(root.glob(f"usr/lib/systemd/system/{t}")) or list(root.glob(f"lib/systemd/system/{t}"))]
    if timers:
        chroot(root, "systemctl", "mask", *timers)

    # Boot: GRUB's modules and config (core.img itself goes to the disk in install_grub()).
    boot = root / "boot"
    kernels = sorted(boot.glob("vmlinuz-*"))
    initrds = sorted(boot.glob("initrd.img-*"))
    if not kernels or not initrds:
        raise BuildError(f"no kernel or initramfs in {boot}: {kernels} {initrds}")
    # The /vmlinuz and /initrd.img symlinks follow kernel upgrades; fall back to the files themselves.
    kernel = "/vmlinuz" if (root / "vmlinuz").is_symlink() else f"/boot/{kernels[-1].name}"
    initrd = "/initrd.img" if (root / "initrd.img").is_symlink() else f"/boot/{initrds[-1].name}"
    shutil.copytree(GRUB_DIR, boot / "grub/i386-pc", dirs_exist_ok=True)
    write(boot / "grub/grub.cfg", GRUB_CFG.format(suite=suite, kernel=kernel, initrd=initrd, uuid=part_uuid))


# ---------------------------------------------------------------------------------------------- disk


def copy_sparse(src: Path, dst: Path, offset: int) -> None:
    """Copy src into dst at offset, only src's data extents (holes stay holes in the sparse dst)."""
    with open(src, "rb") as fin, open(dst, "r+b") as fout:
        fd, size, pos = fin.fileno(), os.fstat(fin.fileno()).st_size, 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after pos
                    break
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            fin.seek(start)
            fout.seek(offset + start)
            left = end - start
            while left:
                chunk = fin.read(min(left, 16 * MIB))
                fout.write(chunk)
                left -= len(chunk)
            pos = end


def install_grub(disk: Path, work: Path) -> None:
    """BIOS GRUB without grub-install: boot.img in the MBR, core.img in the gap before the partition."""
    early = work / "grub-early.cfg"
    early.write_text(GRUB_EARLY_CFG)
    core = work / "core.img"
    run(["grub-mkimage", "-O", "i386-pc", "-d", GRUB_DIR, "-o", core, "-c", early,
         "-p", "(hd0,msdos1)/boot/grub", *GRUB_MODULES])
    core_bytes = core.read_bytes()
    if len(core_bytes) > (PART_START - 1) * SECTOR:
        raise BuildError(f"core.img is {len(core_bytes)} bytes: does not fit before the partition")
    boot_bytes = (GRUB_DIR / "boot.img").read_bytes()
    with open(disk, "r+b") as f:
        f.seek(0)
        f.write(boot_bytes[:440])  # the boot code only: keep the disk signature and the partition table
        f.seek(SECTOR)  # boot.img's default kernel_sector is 1
        f.write(core_bytes)


def build_disk(root: Path, part_uuid: str, size_gb: int, work: Path, timings: dict) -> Path:
    disk = work / "disk.raw"
    part = work / "part.img"
    size = size_gb * 1024 * MIB
    with timed("mkfs.ext4 -d", timings):
        root.chmod(0o755)  # becomes the filesystem's root directory
        with open(part, "wb") as f:
            f.truncate(size - PART_START * SECTOR)
        run(["mkfs.ext4", "-q", "-F", "-L", "root", "-U", part_uuid, "-d", root, part])
        run(["e2fsck", "-f", "-n", part])
    with timed("partitioned disk + GRUB", timings):
        with open(disk, "wb") as f:
            f.truncate(size)
        run(["sfdisk", "--no-reread", "--no-tell-kernel", "--wipe", "never", disk],
            input=f"label: dos\nunit: sectors\n\nstart={PART_START}, type=83, bootable\n")
        copy_sparse(part, disk, PART_START * SECTOR)
        part.unlink()
        install_grub(disk, work)
    return disk


def make_box(disk: Path, suite: str, size_gb: int, out: Path, work: Path, timings: dict) -> None:
    box_dir = work / "box"
    box_dir.mkdir()
    with timed("qemu-img convert -c", timings):
        run(["qemu-img", "convert", "-c", "-O", "qcow2", disk, box_dir / "box.img"])
        disk.unlink()
    (box_dir / "metadata.json").write_text(
        json.dumps({"provider": "libvirt", "format": "qcow2", "virtual_size": size_gb}) + "\n")
    (box_dir / "Vagrantfile").write_text(BOX_VAGRANTFILE.format(suite=suite))
    with timed("box tar", timings):
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        with tarfile.open(partial, "w") as tar:  # uncompressed: box.img is a compressed qcow2 already
            for name in ("metadata.json", "Vagrantfile", "box.img"):
                tar.add(box_dir / name, arcname=name)
        partial.rename(out)


# ---------------------------------------------------------------------------------------------- main


def build(suite: str, out: Path, *, size_gb: int = 10, mirror: str | None = None, rebuild_rootfs: bool = False,
          keep_work: bool = False) -> dict:
    """Build the box; returns the timings (seconds per stage)."""
    mirror = mirror or debian_mirror()
    if suite not in SUITE_PACKAGES:
        raise BuildError(f"unknown suite {suite!r}: one of {', '.join(SUITE_PACKAGES)}")
    check_tools()
    CACHE.mkdir(parents=True, exist_ok=True)
    timings: dict = {}
    t0 = time.monotonic()
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time per cache
        work = Path(tempfile.mkdtemp(prefix=f"work-{suite}-", dir=CACHE))
        try:
            tarball = rootfs_tarball(suite, mirror, work, rebuild_rootfs, timings)
            root = work / "rootfs"
            root.mkdir()
            part_uuid = str(uuid.uuid4())
            with timed("unpack + configure", timings):
                run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "-C", root,
                     "-xpf", tarball])
                configure_rootfs(root, suite, part_uuid)
            disk = build_disk(root, part_uuid, size_gb, work, timings)
            shutil.rmtree(root)
            make_box(disk, suite, size_gb, out, work, timings)
        finally:
            if keep_work:
                log(f"work directory kept: {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
    timings["total"] = round(time.monotonic() - t0, 1)
    log(f"box: {out} ({out.stat().st_size // MIB} MiB), timings {json.dumps(timings)}")
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", choices=sorted(SUITE_PACKAGES))
    parser.add_argument("out", nargs="?", type=Path, help="the .box to write (default: CACHE/check-lab-SUITE.box)")
    parser.add_argument("--size-gb", type=int, default=10, help="virtual disk size (default 10)")
    parser.add_argument("--mirror", default=None,
                        help="Debian mirror (default: the one this machine's apt sources name)")
    parser.add_argument("--rebuild-rootfs", action="store_true", help="run debootstrap even if cached")
    parser.add_argument("--keep-work", action="store_true", help="keep the work directory (debugging)")
    args = parser.parse_args(argv)
    out = (args.out or CACHE / f"check-lab-{args.suite}.box").resolve()
    try:
        build(args.suite, out, size_gb=args.size_gb, mirror=args.mirror, rebuild_rootfs=args.rebuild_rootfs,
              keep_work=args.keep_work)
    except BuildError as exc:
        print(f"build_box: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
