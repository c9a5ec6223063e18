"""Start, inspect and stop the offline test environment (see __main__.py).

What it runs, all started here by hand (no systemd), all tracked by PID files under RUN:
- a Docker engine for the container VMs, on a bridge of its own (no NAT, no iptables rules, no forwarding);
- Debian's `docker-registry` on that bridge, holding the stand-in `library/ubuntu:18.04`; the VMs' engines
  use it as their registry mirror, so the lab's literal `docker pull ubuntu:18.04` works offline;
- the container VM of the repository (provision/container-vm/Dockerfile, what the Vagrantfile builds), built
  once here from a Debian rootfs made by debootstrap instead of Ubuntu 24.04, through the apt proxy, and kept
  in the engine's build cache (a stopped "keeper" container holds the image, so `vagrant destroy`, which
  removes the image a machine was built from, leaves it alone);
- stand-ins for the images the labs pull (test fixtures, labelled so).

Caches (kept by `stop`): the rootfs tarball, the engine's data (images) and the registry's storage, under STATE.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import shlex
import signal
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.testenv.mirrors import debian_mirror

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
IMAGES = HERE / "images"

STATE = Path(os.environ.get("CHECK_LAB_TESTENV_STATE", "/var/lib/check-lab-testenv"))
RUN = Path(os.environ.get("CHECK_LAB_TESTENV_RUN", "/run/check-lab-testenv"))
CACHE = STATE / "cache"

BRIDGE = "cltest0"
HOST_IP = "172.29.107.1"
PREFIX = 24
REGISTRY_ADDR = f"{HOST_IP}:5000"
HUB_ADDR = f"{HOST_IP}:5001"  # Docker Hub's stand-in for lab 03: a registry with logins (htpasswd)
HUB_USER = "student"
APT_PROXY_PORT = 3199  # not apt-cacher-ng's usual 3142: keep clear of one the machine may run itself
APT_PROXY = f"http://{HOST_IP}:{APT_PROXY_PORT}"
WHEELS_PORT = 3141  # the wheel index the stand-in python:2.7-slim installs from (lab 02's requirements)
WHEELS = f"http://{HOST_IP}:{WHEELS_PORT}/"
DEFAULT_SOCKET = Path("/var/run/docker.sock")

SUITE = "bookworm"  # the default container VM: Debian's docker.io 20.10 (engine E1)
# The Docker packages of each suite's container VM. trixie (docker.io 26.1, engines E2/E3) ships the
# client separately and BuildKit as the docker-buildx plugin. docker-compose (lab 13's command: Compose v1,
# 1.29, on bookworm; v2 on trixie) is baked in too, as the provisioner would install it (LAB_COMPOSE).
# sid (Debian unstable: docker.io 28.5 with containerd 2.1 and docker-buildx 0.29, engines E4/E5) is a
# suite of the container VM image only, never of this machine's own apt sources.
DOCKER_PACKAGES = {"bookworm": "docker.io iptables docker-compose",
                   "trixie": "docker.io docker-cli docker-buildx docker-compose iptables",
                   "sid": "docker.io docker-cli docker-buildx docker-compose iptables"}
# Engine E6: sid's Podman with podman-docker (the course's `docker` runs `podman`), rootless for the login user
# (uidmap: its subordinate IDs; passt: its containers' network; nftables, aardvark-dns: netavark's firewall
# and names; catatonit: --init), baked in as the provisioner would install it.
PODMAN_PACKAGES = "podman podman-docker uidmap passt nftables aardvark-dns catatonit ca-certificates"


def vm_settings(suite: str = SUITE, packages: str | None = None) -> dict[str, str]:
    """The LAB_* settings that make the Vagrantfile build the container VM from a Debian suite here
    (packages: the Docker packages baked in; "none": none, the provisioner installs Docker)."""
    return {"LAB_VM_BASE": rootfs_image(suite), "LAB_VM_PACKAGES": packages or DOCKER_PACKAGES[suite],
            "LAB_APT_PROXY": APT_PROXY}


def rootfs_image(suite: str = SUITE) -> str:
    return f"check-lab/rootfs:{suite}"


ROOTFS_IMAGE = rootfs_image()
CONTAINER_VM = REPO / "provision" / "container-vm"
NO_SSHD_IMAGE = f"check-lab/no-sshd:{SUITE}"  # a "VM" that never answers SSH (boot timeout tests)
STANDIN_REF = "library/ubuntu:18.04"

# The file the Vagrantfile reads its settings from when the LAB_* variables are not set.
LAB_ENV_FILE = REPO / ".lab-env"
LAB_ENV_MARK = "# written by tests/testenv (removed by `python3 -m tests.testenv stop`)"

NEEDED = {
    "dockerd": "docker.io",
    "docker": "docker.io",
    "debootstrap": "debootstrap",
    "docker-registry": "docker-registry",
    "ip": "iproute2",
    "vagrant": "vagrant",
    "apt-cacher-ng": "apt-cacher-ng",
    "gcc": "gcc",
    "htpasswd": "apache2-utils",
    "dnsmasq": "dnsmasq-base",
    "openssl": "openssl",
}


class TestEnvError(Exception):
    pass


# ---------------------------------------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(f"testenv: {msg}", flush=True)


def run(argv: list[str], *, env: dict | None = None, check: bool = True, quiet: bool = True,
        timeout: float | None = 1800) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, env=env, text=True, timeout=timeout,
                          stdout=subprocess.PIPE if quiet else None,
                          stderr=subprocess.STDOUT if quiet else None)
    if check and proc.returncode != 0:
        tail = (proc.stdout or "").strip().splitlines()[-15:]
        raise TestEnvError(f"{' '.join(argv[:4])} … failed (exit {proc.returncode}):\n" + "\n".join(tail))
    return proc


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie or a recycled pid of another program is not ours.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def read_pid(name: str) -> int | None:
    path = RUN / f"{name}.pid"
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def start_daemon(name: str, argv: list[str]) -> int:
    RUN.mkdir(parents=True, exist_ok=True)
    logf = open(RUN / f"{name}.log", "ab")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
    (RUN / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc.pid


def stop_daemon(name: str, timeout: float = 30) -> None:
    pid = read_pid(name)
    if pid is None:
        (RUN / f"{name}.pid").unlink(missing_ok=True)
        return
    log(f"stopping {name} (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    (RUN / f"{name}.pid").unlink(missing_ok=True)


def wait_for(what: str, probe, timeout: float, logfile: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.3)
    tail = ""
    if logfile and logfile.exists():
        tail = "\n" + "\n".join(logfile.read_text(errors="replace").splitlines()[-15:])
    raise TestEnvError(f"{what} did not come up within {timeout:.0f}s{tail}")


# ---------------------------------------------------------------------------------------------- settings


def load_settings() -> dict:
    try:
        return json.loads((RUN / "settings.json").read_text())
    except (OSError, ValueError):
        raise TestEnvError("the test environment is not running: python3 -m tests.testenv start") from None


# Vagrant would otherwise ask HashiCorp's servers for news and box updates: no traffic leaves the test network.
# Builds on this machine's engine (Docker 20.10, maybe driven by a newer CLI without buildx) use the classic
# builder, Vagrant's build of the container VM included.
VAGRANT_OFFLINE = {"VAGRANT_CHECKPOINT_DISABLE": "1", "VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1", "DOCKER_BUILDKIT": "0"}


def docker_env(settings: dict) -> dict:
    return {**os.environ, **VAGRANT_OFFLINE, "DOCKER_HOST": settings["docker_host"], "DOCKER_BUILDKIT": "0",
            "DOCKER_CLI_HINTS": "false"}


def lab_settings(settings: dict) -> dict[str, str]:
    """The LAB_* settings the Vagrantfile and the provisioner read, pointing at this environment."""
    return {
        **vm_settings(SUITE),
        "LAB_REGISTRY_MIRROR": f"http://{REGISTRY_ADDR}",
        "LAB_INSECURE_REGISTRY": f"{REGISTRY_ADDR},{HUB_ADDR}",
        "LAB_VM_ISOLATED": "1",
        "LAB_VM_DNS": HOST_IP,
        # Many container VMs run at once here: none takes the course's fixed address or host ports (the
        # tests that need them give their own, tests/integration/test_swarm.py).
        "LAB_ADDRESS": "none",
        "LAB_FORWARD_PORTS": "none",
    }


def export_lines(settings: dict) -> str:
    lines = [f"export DOCKER_HOST={settings['docker_host']}", "export DOCKER_BUILDKIT=0"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in lab_settings(settings).items()]
    return "\n".join(lines)


def describe(settings: dict) -> str:
    where = "" if settings["docker_host"] == f"unix://{DEFAULT_SOCKET}" else (
        "\n  the engine is not on the default socket: eval \"$(python3 -m tests.testenv env)\" first")
    lab_env = f"\n  settings for `vagrant up`: {LAB_ENV_FILE}" if settings.get("lab_env_file") else (
        "\n  set the LAB_* variables of `python3 -m tests.testenv env` before `vagrant up`")
    return (f"test environment ready: engine {settings['docker_host']}, registry mirror http://{REGISTRY_ADDR},"
            f" container VM from {rootfs_image(SUITE)}{where}{lab_env}\n"
            f"  now: vagrant up --provider=docker && check-lab 07")


def status_text() -> str:
    parts = []
    for name in ("dockerd", "registry", "hub", "apt-proxy", "wheels"):
        pid = read_pid(name)
        parts.append(f"{name}: {'running, pid %d' % pid if pid else 'stopped'}")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------- services


def check_tools() -> None:
    if os.geteuid() != 0:
        raise TestEnvError("run as root (it starts dockerd and a registry)")
    missing = sorted({pkg for tool, pkg in NEEDED.items() if not shutil.which(tool)})
    if missing:
        raise TestEnvError(f"missing tools; install them with: apt-get install -y {' '.join(missing)}")


def ensure_bridge() -> None:
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        return
    run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    run(["ip", "addr", "add", f"{HOST_IP}/{PREFIX}", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])


def engine_answers(host: str) -> bool:
    proc = subprocess.run(["docker", "-H", host, "version", "--format", "{{.Server.Version}}"],
                          capture_output=True, text=True, timeout=20,
                          env={**os.environ, "DOCKER_CLI_HINTS": "false"})
    return proc.returncode == 0


def ensure_dockerd() -> str:
    pid = read_pid("dockerd")
    socket_file = RUN / "docker.socket"
    if pid is not None and socket_file.exists():
        host = socket_file.read_text().strip()
        if engine_answers(host):
            return host
    # Keep clear of a Docker engine that somebody else runs on the default socket.
    if DEFAULT_SOCKET.exists() and engine_answers(f"unix://{DEFAULT_SOCKET}") and pid is None:
        sock = RUN / "docker.sock"
    else:
        sock = DEFAULT_SOCKET
    host = f"unix://{sock}"
    data_root = STATE / "docker"
    data_root.mkdir(parents=True, exist_ok=True)
    log(f"starting dockerd on {host}")
    start_daemon("dockerd", [
        "dockerd", "--data-root", str(data_root), "--exec-root", str(RUN / "docker-exec"),
        "--pidfile", str(RUN / "dockerd.own.pid"), "-H", host,
        "--bridge", BRIDGE, "--iptables=false", "--ip-masq=false", "--ip-forward=false",
        "--storage-driver", "overlay2", "--insecure-registry", REGISTRY_ADDR,
    ])
    socket_file.write_text(host + "\n")
    wait_for("dockerd", lambda: engine_answers(host), 90, RUN / "dockerd.log")
    return host


def ensure_wheels() -> None:
    """The wheel index of the stand-in python image, served over HTTP on the test bridge (filled by
    fill_wheels once the stand-in is built)."""
    folder = STATE / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    if read_pid("wheels") is not None and http_ok(WHEELS):
        return
    log(f"serving the wheel index on {WHEELS}")
    start_daemon("wheels", [sys.executable, "-m", "http.server", "--bind", HOST_IP, str(WHEELS_PORT),
                            "--directory", str(folder)])
    wait_for("the wheel index", lambda: http_ok(WHEELS), 30, RUN / "wheels.log")


def fill_wheels(settings: dict, image: str) -> None:
    """The requirements of the labs' Python apps and what they need, fetched once from PyPI (with this
    machine's own pip configuration) for the stand-in's Python: pip evaluates the requirements' markers
    (`python_full_version < "3.11.3"`) for the interpreter it runs on, so what the image's Python needs
    beyond that is added from the wheels' own metadata."""
    from email.parser import Parser
    from zipfile import ZipFile

    from packaging.markers import InvalidMarker
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name, parse_wheel_filename

    folder = STATE / "wheels"
    requirements = sorted((REPO / "labs").glob("*/course/**/requirements.txt"))
    stamp = folder / ".requirements"
    wanted_text = "".join(p.read_text() for p in requirements) + image_digest(settings, image)
    if stamp.exists() and stamp.read_text() == wanted_text:
        return
    probe = ("import json; from pip._vendor.packaging.markers import default_environment as d; "
             "print(json.dumps(d()))")
    out = run(["docker", "run", "--rm", "--network", "none", image, "python3", "-c", probe],
              env=docker_env(settings)).stdout
    environment = {**json.loads(out.strip().splitlines()[-1]), "extra": ""}
    pip = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary=:all:",
           "--python-version", environment["python_full_version"], "-d", str(folder)]
    for req in requirements:
        log(f"fetching the wheels of {req.relative_to(REPO)}")
        run(pip + ["-r", str(req)])
    for _ in range(10):
        have = {canonicalize_name(parse_wheel_filename(w.name)[0]) for w in folder.glob("*.whl")}
        wanted = set()
        for wheel in folder.glob("*.whl"):
            with ZipFile(wheel) as archive:
                meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
                headers = Parser().parsestr(archive.read(meta).decode())
            for line in headers.get_all("Requires-Dist") or []:
                try:
                    req = Requirement(line)
                    needed = req.marker is None or req.marker.evaluate(environment)
                except InvalidMarker:
                    continue
                if needed and canonicalize_name(req.name) not in have:
                    wanted.add(str(Requirement(f"{req.name}{req.specifier}")))
        if not wanted:
            break
        log(f"fetching the wheels the stand-in's Python also needs: {', '.join(sorted(wanted))}")
        run(pip + sorted(wanted))
    stamp.write_text(wanted_text)


def http_ok(url: str) -> bool:
    """True if URL answers 200 within two seconds."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def registry_answers() -> bool:
    return http_ok(f"http://{REGISTRY_ADDR}/v2/")


def serve_registry(name: str, addr: str, what: str, answers, auth: str = "") -> None:
    """Debian's docker-registry on `addr`, its storage under STATE/name (kept), its config `auth` added."""
    storage = STATE / name
    storage.mkdir(parents=True, exist_ok=True)
    config = RUN / f"{name}.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {addr}\n" + auth
    )
    log(f"starting {what} on {addr}")
    start_daemon(name, ["docker-registry", "serve", str(config)])
    wait_for(what, answers, 30, RUN / f"{name}.log")


def ensure_registry() -> None:
    if read_pid("registry") is not None and registry_answers():
        return
    serve_registry("registry", REGISTRY_ADDR, "the registry mirror", registry_answers)


def hub_password() -> str:
    """The password of HUB_USER on the registry with logins, made once per test environment."""
    path = STATE / "hub.password"
    if not path.exists():
        import secrets

        path.write_text(secrets.token_urlsafe(18))
        path.chmod(0o600)
    return path.read_text().strip()


def hub_answers() -> bool:
    """The registry with logins answers (401 to a request without credentials)."""
    try:
        urllib.request.urlopen(f"http://{HUB_ADDR}/v2/", timeout=2)
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except OSError:
        return False
    return False


def ensure_hub() -> None:
    """A second registry that wants a login, as Docker Hub does (lab 03 pushes to it); one user, HUB_USER."""
    if read_pid("hub") is not None and hub_answers():
        return
    htpasswd = RUN / "hub.htpasswd"
    run(["htpasswd", "-Bbc", str(htpasswd), HUB_USER, hub_password()])
    serve_registry("hub", HUB_ADDR, "the registry with logins", hub_answers,
                   f"auth:\n  htpasswd:\n    realm: check-lab-hub\n    path: {htpasswd}\n")


def dns_query(name: str) -> tuple[int, str | None] | None:
    """Ask the test network's name server for `name`'s address: (its answer code, the first A record), or
    None when it does not answer."""
    import socket

    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split("."))
    query = bytes.fromhex("abcd01000001000000000000") + labels + b"\x00\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1)
        try:
            sock.sendto(query, (HOST_IP, 53))
            answer = sock.recv(512)
        except OSError:
            return None
    if answer[:2] != query[:2]:
        return None
    address = None
    if answer[3] & 0x0F == 0 and int.from_bytes(answer[6:8], "big") > 0 and answer[-6:-4] == b"\x00\x04":
        address = ".".join(str(b) for b in answer[-4:])  # the last record (dnsmasq sends one A record)
    return answer[3] & 0x0F, address


def dns_answers() -> bool:
    """The name server answers: no such name for the world's names, the download server's address for the
    hosts the labs download from."""
    if (dns_query("example") or (None,))[0] != 3:
        return False
    return all(dns_query(host) == (0, HOST_IP) for host in download_hosts())


def ensure_dns() -> None:
    """The name server of the isolated test network: it answers every name with "no such name" at once, as
    the world's DNS does for `redis` or `container_2`, where an unreachable one would make every lookup wait;
    the hosts the labs' Dockerfiles download from, with the stand-in download server's address (this machine's
    address on the test bridge)."""
    if read_pid("dns") is not None and dns_answers():
        return
    stop_daemon("dns")  # one of an older test environment, which knew fewer names
    log(f"starting the name server of the test network on {HOST_IP}:53")
    start_daemon("dns", ["dnsmasq", "--keep-in-foreground", "--log-facility=-", "--no-resolv", "--no-hosts",
                         "--bind-interfaces", f"--listen-address={HOST_IP}", "--except-interface=lo",
                         "--address=/#/", *(f"--address=/{host}/{HOST_IP}" for host in download_hosts()),
                         f"--pid-file={RUN / 'dnsmasq.pid'}", "--user=root"])
    wait_for("the name server", dns_answers, 30, RUN / "dns.log")


# ---------------------------------------------------------------------------------------------- downloads
# What the labs' Dockerfiles fetch with wget (lab 17's JDK 9 and 10), served by a stand-in HTTPS server
# (tests/testenv/downloads.py) under the same names, with a certificate of a test CA.

DOWNLOADS = STATE / "downloads"
TLS = STATE / "tls"


def download_urls() -> list[tuple[str, str]]:
    """(host, path) of every `https://…` a lab's Dockerfile fetches (labs/*/course/Dockerfile*)."""
    found = []
    for dockerfile in sorted(REPO.glob("labs/*/course/Dockerfile*")):
        for match in re.finditer(r"\bhttps://([A-Za-z0-9.-]+)(/\S*)", dockerfile.read_text()):
            if (match.group(1), match.group(2)) not in found:
                found.append((match.group(1), match.group(2)))
    return found


def download_hosts() -> list[str]:
    return sorted({host for host, _path in download_urls()})


def ensure_test_ca() -> Path:
    """The test CA (made once) and the download server's certificate for the download hosts; the CA's file."""
    TLS.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = TLS / "ca.key", TLS / "ca.crt"
    if not ca_crt.exists():
        log("making the test CA (a test fixture: the stand-in download server's certificates)")
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj",
             "/CN=check-lab test CA (test fixture)", "-keyout", str(ca_key), "-out", str(ca_crt)])
    hosts = download_hosts()
    names = TLS / "server.names"
    if not (TLS / "server.crt").exists() or not names.exists() or names.read_text() != "\n".join(hosts):
        ext = TLS / "server.ext"
        ext.write_text("subjectAltName=" + ",".join(f"DNS:{h}" for h in hosts) + "\n")
        run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=check-lab download stand-in",
             "-keyout", str(TLS / "server.key"), "-out", str(TLS / "server.csr")])
        run(["openssl", "x509", "-req", "-in", str(TLS / "server.csr"), "-CA", str(ca_crt), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "3650", "-extfile", str(ext), "-out", str(TLS / "server.crt")])
        names.write_text("\n".join(hosts))
    return ca_crt


# A JDK's tarball, openjdk-VERSION_linux-x64_bin.tar.gz, holds jdk-VERSION/: made of the OpenJDK stand-in's
# JDK (Debian's OpenJDK 17), with java-blind (tests/testenv/images/standin-openjdk8) as its bin/java, which
# behaves as those JVMs did in a container: one older than 10 reads the memory limit only when told to, Java 10
# by default ("aware"), and both only where cgroup v1 keeps it.
JDK_TARBALL = re.compile(r"openjdk-(\d+(?:\.\d+)*)_linux-x64_bin\.tar\.gz")
MAKE_JDK = r"""set -e
jdk=$(dirname "$(dirname "$(readlink -f /usr/bin/javac)")")
rm -rf "/tmp/$1"; cp -rL "$jdk" "/tmp/$1" 2>/dev/null || true
rm -rf "/tmp/$1/jmods" "/tmp/$1/docs" "/tmp/$1/man"  # what no lab uses (jlink's modules: 75 MB)
mv "/tmp/$1/bin/java" "/tmp/$1/bin/java.real"; cp /in/java-blind "/tmp/$1/bin/java"; chmod 755 "/tmp/$1/bin/java"
if [ "$2" = aware ]; then touch "/tmp/$1/bin/.container-support"; fi
tar -C /tmp -cf - "$1" | gzip -1 > "/out/$3.part"; mv "/out/$3.part" "/out/$3"
"""


def ensure_downloads(settings: dict) -> None:
    """The stand-in download server and what it serves (test fixtures), running."""
    ca = ensure_test_ca()
    image = f"{REGISTRY_ADDR}/library/openjdk:7"
    launcher = (IMAGES / "standin-openjdk8" / "java-blind").read_bytes()
    stamp = image_digest(settings, image) + " " + hashlib.sha256(MAKE_JDK.encode() + launcher).hexdigest()[:16]
    for host, path in download_urls():
        folder = DOWNLOADS / host / path.lstrip("/").rpartition("/")[0]
        name = path.rpartition("/")[2]
        match = JDK_TARBALL.fullmatch(name)
        if not match:
            raise TestEnvError(f"a lab's Dockerfile downloads https://{host}{path}: the test environment has no "
                               f"stand-in for it")
        version = match.group(1)
        target, made_from = folder / name, folder / f".{name}.from"
        if target.exists() and made_from.exists() and made_from.read_text() == stamp:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        log(f"making the stand-in https://{host}{path} (Debian's OpenJDK 17 as jdk-{version}; a test fixture)")
        blind = "blind" if int(version.split(".")[0]) < 10 else "aware"
        run(["docker", "run", "--rm", "-v", f"{folder}:/out", "-v", f"{IMAGES / 'standin-openjdk8'}:/in:ro", image,
             "sh", "-c", MAKE_JDK, "make-jdk", f"jdk-{version}", blind, name], env=docker_env(settings))
        made_from.write_text(stamp)
    if read_pid("downloads") is None or not downloads_answer(ca):
        stop_daemon("downloads")
        log(f"starting the stand-in download server on https://{HOST_IP}:443 ({', '.join(download_hosts())})")
        start_daemon("downloads", [sys.executable, str(HERE / "downloads.py"), str(DOWNLOADS), str(TLS / "server.crt"),
                                   str(TLS / "server.key"), HOST_IP])
        wait_for("the download server", lambda: downloads_answer(ca), 30, RUN / "downloads.log")


def downloads_answer(ca: Path) -> bool:
    """The download server answers over TLS with the test CA's certificate for the first download host."""
    import http.client
    import socket
    import ssl

    if not download_urls():
        return True
    host, path = download_urls()[0]
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with socket.create_connection((HOST_IP, 443), timeout=2) as raw:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                conn = http.client.HTTPConnection(host)
                conn.sock = tls
                conn.request("HEAD", path)
                return conn.getresponse().status == 200
    except OSError:
        return False


def apt_proxy_answers() -> bool:
    return http_ok(f"{APT_PROXY}/acng-report.html")


def ensure_apt_proxy() -> None:
    """Debian's apt-cacher-ng on the test bridge: the only way out to the Debian mirror for an isolated VM."""
    if read_pid("apt-proxy") is not None and apt_proxy_answers():
        return
    cache = STATE / "apt-cacher-ng"
    logs = RUN / "apt-cacher-ng"
    conf = RUN / "apt-cacher-ng-conf"
    cache.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    if conf.exists():
        shutil.rmtree(conf)
    shutil.copytree("/etc/apt-cacher-ng", conf)
    # Debian requests go to this machine's Debian mirror (the package ships no backends_debian).
    (conf / "backends_debian").write_text(debian_mirror() + "/\n")
    log(f"starting the apt proxy on {APT_PROXY}")
    start_daemon("apt-proxy", [
        "apt-cacher-ng", "-c", str(conf), "ForeGround=1", f"Port={APT_PROXY_PORT}",
        f"BindAddress={HOST_IP}", f"CacheDir={cache}", f"LogDir={logs}", f"PidFile={RUN / 'acng.pid'}",
        f"SocketPath={RUN / 'acng.socket'}", "ReportPage=acng-report.html",
    ])
    wait_for("the apt proxy", apt_proxy_answers, 30, RUN / "apt-proxy.log")


# ---------------------------------------------------------------------------------------------- images


UNSTABLE = ("sid", "unstable")


def rootfs_tar(suite: str = SUITE) -> Path:
    """A Debian minbase rootfs as a tarball, made once by debootstrap and cached."""
    out = CACHE / f"{suite}-minbase.tar"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    work = CACHE / f"{suite}-rootfs.tmp"
    if work.exists():
        shutil.rmtree(work)
    mirror = debian_mirror()
    log(f"debootstrap {suite} (minbase) from {mirror}; about a minute")
    run(["debootstrap", "--variant=minbase", suite, str(work), mirror])
    if suite in UNSTABLE:
        # The mirror this machine reaches may hold a snapshot of unstable older than its Release file's
        # Valid-Until (a week): apt would refuse it. A test fixture's setting, never the product's.
        (work / "etc/apt/apt.conf.d/99check-lab-testenv").write_text(
            '// check-lab test environment: the mirror may serve an older snapshot of unstable\n'
            'Acquire::Check-Valid-Until "false";\n')
    tmp = out.with_suffix(".tar.tmp")
    run(["tar", "--numeric-owner", "-C", str(work), "-cf", str(tmp), "."])
    tmp.rename(out)
    shutil.rmtree(work)
    return out


TRIM = ("./usr/share/doc/", "./usr/share/man/", "./usr/share/locale/", "./usr/share/info/",
        "./var/cache/apt/", "./var/lib/apt/lists/", "./var/cache/debconf/", "./var/log/")


def trimmed_tar(full: Path) -> Path:
    """The rootfs without documentation, locales and caches: the stand-in base image's first layer."""
    out = full.with_name(full.name.replace(".tar", "-trimmed.tar"))
    if out.exists() and out.stat().st_mtime >= full.stat().st_mtime:
        return out
    tmp = out.with_suffix(".tmp")
    with tarfile.open(full) as src, tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as dst:
        for member in src:
            if not member.isdir() and member.name.startswith(TRIM):
                continue
            dst.addfile(member, src.extractfile(member) if member.isreg() else None)
    tmp.rename(out)
    return out


def image_exists(settings: dict, ref: str) -> bool:
    return run(["docker", "image", "inspect", ref], env=docker_env(settings), check=False).returncode == 0


def build(settings: dict, tag: str, context: Path, *, network_host: bool = False,
          build_args: dict | None = None) -> None:
    argv = ["docker", "build", "-q", "-t", tag]
    if network_host:
        argv += ["--network", "host"]
    for key, value in (build_args or {}).items():
        argv += ["--build-arg", f"{key}={value}"]
    log(f"building {tag}")
    run(argv + [str(context)], env=docker_env(settings))


def ensure_rootfs_image(settings: dict, suite: str) -> Path:
    full = rootfs_tar(suite)
    if not image_exists(settings, rootfs_image(suite)):
        log(f"importing {rootfs_image(suite)}")
        run(["docker", "import", str(full), rootfs_image(suite)], env=docker_env(settings))
    return full


def push_standin(settings: dict, ref: str, context: Path, build_args: dict | None = None) -> None:
    """Build a stand-in and push it to the mirror as `ref` (library/NAME:TAG), unless it is there already."""
    mirror_ref = f"{REGISTRY_ADDR}/{ref}"
    build(settings, mirror_ref, context, build_args=build_args)
    if not mirror_has(ref, image_digest(settings, mirror_ref)):
        log(f"pushing the stand-in {ref} to the mirror")
        run(["docker", "push", mirror_ref], env=docker_env(settings))


def ensure_standins(settings: dict) -> None:
    """The stand-ins for the images the labs pull (test fixtures, labelled so), in the mirror."""
    full = ensure_rootfs_image(settings, SUITE)
    ctx = CACHE / "standin-context"
    ctx.mkdir(parents=True, exist_ok=True)
    shutil.copy2(IMAGES / "standin-ubuntu" / "Dockerfile", ctx / "Dockerfile")
    trimmed = trimmed_tar(full)
    target = ctx / "rootfs.tar"
    if not target.exists() or target.stat().st_ino != trimmed.stat().st_ino:
        target.unlink(missing_ok=True)
        os.link(trimmed, target)
    push_standin(settings, STANDIN_REF, ctx)

    # busybox, nginx, python:2.7-slim, openjdk, portainer, mysql and wordpress from Debian's packages (through
    # the apt proxy); python's pip installs from the wheel index; the JDK image is both openjdk:7 and
    # openjdk:11.0-jdk. Built side by side, a chain each (what one builds on comes first in its chain): on a
    # fresh machine most of their time is apt's downloads and unpacking.
    args = {"ROOTFS": ROOTFS_IMAGE, "APT_PROXY": APT_PROXY}
    ensure_test_ca()  # ubuntu:latest trusts it, the download server serves with it: made once, before both

    def busybox_then_portainer():
        push_standin(settings, "library/busybox:latest", IMAGES / "standin-busybox", args)
        push_standin(settings, "portainer/portainer:latest", IMAGES / "standin-portainer",
                     {"BUSYBOX": f"{REGISTRY_ADDR}/library/busybox:latest"})  # built on the busybox stand-in

    def python_and_its_wheels():
        push_standin(settings, "library/python:2.7-slim", IMAGES / "standin-python",
                     {**args, "PIP_FIND_LINKS": WHEELS})
        fill_wheels(settings, f"{REGISTRY_ADDR}/library/python:2.7-slim")

    def the_jdks():
        push_standin(settings, "library/openjdk:11.0-jdk", IMAGES / "standin-openjdk", args)
        push_standin(settings, "library/openjdk:7", IMAGES / "standin-openjdk", args)
        # lab 17: openjdk:8u151 blind to its container's limits as 8u151 was; the JDK 9 and 10 tarballs its
        # ubuntu:latest downloads, made from the same JDK.
        push_standin(settings, "library/openjdk:8u151", IMAGES / "standin-openjdk8",
                     {"OPENJDK": f"{REGISTRY_ADDR}/library/openjdk:7"})
        ensure_downloads(settings)

    def ubuntu_latest():
        # ubuntu:latest whose apt and wget reach the test environment's apt proxy and stand-in download server.
        latest = CACHE / "standin-ubuntu-latest"
        latest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(IMAGES / "standin-ubuntu-latest" / "Dockerfile", latest / "Dockerfile")
        shutil.copy2(TLS / "ca.crt", latest / "test-ca.crt")
        push_standin(settings, "library/ubuntu:latest", latest,
                     {"UBUNTU": f"{REGISTRY_ADDR}/{STANDIN_REF}", "APT_PROXY": APT_PROXY})

    def hello_world():
        # one static binary printing hello-world's text, compiled here with Debian's gcc.
        hello = CACHE / "standin-hello-world"
        hello.mkdir(parents=True, exist_ok=True)
        source = IMAGES / "standin-hello-world"
        shutil.copy2(source / "Dockerfile", hello / "Dockerfile")
        binary = hello / "hello"
        if not binary.exists() or binary.stat().st_mtime < (source / "hello.c").stat().st_mtime:
            run(["gcc", "-static", "-Os", "-s", "-o", str(binary), str(source / "hello.c")])
        push_standin(settings, "library/hello-world:latest", hello)

    side_by_side(
        busybox_then_portainer, python_and_its_wheels, the_jdks, ubuntu_latest, hello_world,
        lambda: push_standin(settings, "library/nginx:latest", IMAGES / "standin-nginx", args),
        lambda: push_standin(settings, "library/mysql:5.7", IMAGES / "standin-mysql", args),
        lambda: push_standin(settings, "library/wordpress:latest", IMAGES / "standin-wordpress", args))


def side_by_side(*jobs) -> None:
    """Run independent jobs at once (builds that mostly wait on downloads); the first failure is raised
    once all have ended, so none is left half-done behind the error."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(job) for job in jobs]
    for future in futures:
        future.result()


def ensure_container_vm(settings: dict, suite: str = SUITE, packages: str | None = None) -> str:
    """Build provision/container-vm/Dockerfile as the Vagrantfile will (same arguments, so Vagrant's own
    build finds every layer in the cache), and keep the image with a stopped keeper container; its ID."""
    ensure_rootfs_image(settings, suite)
    vm = vm_settings(suite, packages)
    args = {"BASE": vm["LAB_VM_BASE"], "DOCKER_PACKAGES": "" if vm["LAB_VM_PACKAGES"] == "none" else
            vm["LAB_VM_PACKAGES"], "VAGRANT_PUBKEYS": vagrant_public_keys(), "APT_PROXY": vm["LAB_APT_PROXY"]}
    argv = ["docker", "build", "-q"]
    for key, value in args.items():
        argv += ["--build-arg", f"{key}={value}"]
    log(f"building the container VM from {vm['LAB_VM_BASE']} ({vm['LAB_VM_PACKAGES']})")
    image = run(argv + [str(CONTAINER_VM)], env=docker_env(settings)).stdout.strip().splitlines()[-1]
    keeper = f"check-lab-keep-vm-{suite}-{hashlib.sha256(vm['LAB_VM_PACKAGES'].encode()).hexdigest()[:8]}"
    held = run(["docker", "container", "inspect", "--format", "{{.Image}}", keeper], env=docker_env(settings),
               check=False).stdout.strip()
    if held != image:
        run(["docker", "rm", "-f", keeper], env=docker_env(settings), check=False)
        run(["docker", "create", "--name", keeper, "--label", "check-lab.testenv=keeper", image, "true"],
            env=docker_env(settings))
    return image


def ensure_images(settings: dict) -> None:
    ensure_rootfs_image(settings, SUITE)  # what all of them start from
    side_by_side(lambda: ensure_standins(settings), lambda: ensure_container_vm(settings, SUITE),
                 lambda: build(settings, NO_SSHD_IMAGE, IMAGES / "no-sshd", build_args={"ROOTFS": ROOTFS_IMAGE}))


def vagrant_public_keys() -> str:
    """Vagrant's insecure public key(s), as the Vagrantfile reads them from Vagrant's installation."""
    folder = vagrant_public_key().parent
    return "\n".join(p.read_text().strip() for p in sorted(folder.glob("vagrant.pub*")))


def vagrant_public_key() -> Path:
    proc = run(["dpkg", "-L", "vagrant"])
    for line in proc.stdout.splitlines():
        if line.endswith("/keys/vagrant.pub"):
            return Path(line)
    raise TestEnvError("Vagrant's insecure public key (keys/vagrant.pub) not found in the vagrant package")


def image_digest(settings: dict, ref: str) -> str:
    proc = run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], env=docker_env(settings))
    return proc.stdout.strip()


def mirror_has(ref: str, image_id: str) -> bool:
    """Whether the registry holds `ref` with the config blob of `image_id` (then nothing needs a push)."""
    repo, tag = ref.split(":")
    req = urllib.request.Request(f"http://{REGISTRY_ADDR}/v2/{repo}/manifests/{tag}",
                                 headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            manifest = json.load(resp)
    except (OSError, ValueError):
        return False
    return manifest.get("config", {}).get("digest") == image_id


# ---------------------------------------------------------------------------------------------- real VMs


def libvirt_settings(suite: str = SUITE) -> dict[str, str]:
    """The LAB_* settings for a libvirt VM of the test environment: QEMU/TCG (no usable KVM here), the
    offline box, the isolated management network of boxes/libvirtd.py (it routes to the registry)."""
    from tests.testenv.boxes import libvirtd

    return {"LAB_BOX": f"check-lab/{suite}", "LAB_LIBVIRT_DRIVER": "qemu", "LAB_LIBVIRT_NETWORK": libvirtd.MGMT_NET,
            "LAB_LIBVIRT_NETWORK_ADDRESS": libvirtd.MGMT_CIDR, "LAB_BOOT_TIMEOUT": "900",
            "LAB_COMPOSE": "no"}  # no Compose to install under TCG: the labs run there need none


# The course's three swarm machines as libvirt VMs: on a subnet of their own (the container VMs' swarm
# network holds the course's 192.168.135.0/24 on this host), one processor and 1 GB each (three TCG guests
# on two cores), no docker-vm settings (its address, its forwarded ports).
LIBVIRT_SWARM_SUBNET = "10.135.7"


def libvirt_swarm_settings(suite: str = SUITE) -> dict[str, str]:
    return {**libvirt_settings(suite), "LAB_SUBNET": LIBVIRT_SWARM_SUBNET, "LAB_ADDRESS": "none",
            "LAB_FORWARD_PORTS": "none", "LAB_CPUS": "1", "LAB_MEMORY": "1024"}


def ensure_libvirt() -> None:
    from tests.testenv.boxes import libvirtd

    libvirtd.start()


def ensure_box(suite: str = SUITE) -> str:
    """The offline libvirt box of a Debian suite, built if needed (or if its recipe changed) and added to
    Vagrant; returns its name."""
    from tests.testenv.boxes import build_box, libvirtd

    name = f"check-lab/{suite}"
    path = build_box.CACHE / f"check-lab-{suite}.box"
    recipe = hashlib.sha256(Path(build_box.__file__).read_bytes()).hexdigest()[:16]
    stamp = path.with_suffix(".recipe")
    fresh = path.exists() and stamp.exists() and stamp.read_text() == recipe
    if not fresh:
        log(f"building the libvirt box {name} (debootstrap, disk, GRUB; a few minutes)")
        build_box.build(suite, path)
        stamp.write_text(recipe)
    boxes = run(["vagrant", "box", "list", "--machine-readable"], env={**os.environ, **VAGRANT_OFFLINE}).stdout
    if not fresh or f"box-name,{name}" not in boxes:
        # vagrant-libvirt keeps an uploaded copy per box version in the pool: drop the old ones first.
        prefix = name.replace("/", "-VAGRANTSLASH-") + "_vagrant_box_image_"
        for line in libvirtd.virsh("vol-list", libvirtd.POOL, check=False).stdout.splitlines():
            if line.split() and line.split()[0].startswith(prefix):
                libvirtd.virsh("vol-delete", "--pool", libvirtd.POOL, line.split()[0], check=False)
        log(f"adding the box {name} to Vagrant")
        run(["vagrant", "box", "add", "--force", "--name", name, str(path)], env={**os.environ, **VAGRANT_OFFLINE})
    return name


# ---------------------------------------------------------------------------------------------- entry points


def write_lab_env(settings: dict) -> bool:
    """Write the Vagrantfile's settings file, unless the user has one of their own there."""
    if LAB_ENV_FILE.exists() and LAB_ENV_MARK not in LAB_ENV_FILE.read_text(errors="replace"):
        log(f"{LAB_ENV_FILE} is not ours: left as it is")
        return False
    body = [LAB_ENV_MARK] + [f"{k}={v}" for k, v in lab_settings(settings).items()]
    LAB_ENV_FILE.write_text("\n".join(body) + "\n")
    return True


def start() -> dict:
    check_tools()
    RUN.mkdir(parents=True, exist_ok=True)
    STATE.mkdir(parents=True, exist_ok=True)
    ensure_bridge()
    host = ensure_dockerd()
    ensure_registry()
    ensure_hub()
    ensure_dns()
    ensure_apt_proxy()
    ensure_wheels()
    settings = {"docker_host": host, "registry": REGISTRY_ADDR, "no_sshd_image": NO_SSHD_IMAGE, "apt_proxy": APT_PROXY,
                "bridge": BRIDGE, "host_ip": HOST_IP}
    ensure_images(settings)
    settings["lab_env_file"] = write_lab_env(settings)
    (RUN / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    return settings


def stop() -> None:
    from tests.testenv.boxes import libvirtd

    if libvirtd.LIBVIRTD.own_pid() is not None or libvirtd.VIRTLOGD.own_pid() is not None:
        log("stopping libvirt (what boxes/libvirtd.py started)")
        libvirtd.stop(force=True)
    stop_daemon("wheels")
    stop_daemon("downloads")
    stop_daemon("dns")
    stop_daemon("hub")
    stop_daemon("apt-proxy")
    stop_daemon("registry")
    stop_daemon("dockerd", timeout=60)
    (RUN / "settings.json").unlink(missing_ok=True)
    (RUN / "docker.socket").unlink(missing_ok=True)
    if LAB_ENV_FILE.exists() and LAB_ENV_MARK in LAB_ENV_FILE.read_text(errors="replace"):
        LAB_ENV_FILE.unlink()
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        run(["ip", "link", "del", BRIDGE], check=False)
    log("stopped (caches kept in %s)" % STATE)
