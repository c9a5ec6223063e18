"""Broken versions of lab 07, each making some of its claims false on a real engine.

Shared by the integration tests (negative cases) and the transcript recorder, so the unit tests
replay exactly what the integration tests exercise.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB07 = REPO / "labs" / "07-FS_layering"

# name -> (Dockerfile-my-image, claims that must fail)
VARIANTS: dict[str, tuple[str, set[str]]] = {
    # Built from the OS image instead of my-base-image: the base's layers are not reused.
    "not-from-base": (
        "FROM ubuntu:18.04\nCOPY hello.sh /app/hello.sh\nCMD /app/hello.sh\n",
        {"base-layers-shared", "cmd-layer-empty", "image-sizes-equal"},
    ),
    # A RUN before the CMD: a new filesystem layer, a bigger image.
    "extra-run-layer": (
        "FROM my-base-image:1.0\nRUN echo built > /app/built.txt\nCMD /app/hello.sh\n",
        {"cmd-layer-empty", "image-sizes-equal"},
    ),
    # An entrypoint that ends at once: the containers do not keep running (and `--rm` removes them, so their
    # sizes, directories and disk use cannot be measured: not judged).
    "exits-at-once": (
        'FROM my-base-image:1.0\nENTRYPOINT ["true"]\nCMD /app/hello.sh\n',
        {"five-containers-running", "cmd-layer-empty", "container-writable-layer-small", "container-dirs-small",
         "disk-total-formula"},
    ),
    # Containers that write 2 MB into their writable layer and print 1.5 MB to their log.
    "noisy-containers": (
        "FROM my-base-image:1.0\n"
        'ENTRYPOINT ["/bin/sh", "-c", "head -c 2000000 /dev/zero > /var/tmp/junk; '
        "head -c 1500000 /dev/zero | tr '\\\\0' x; echo; exec \\\"$@\\\"\", \"--\"]\n"
        "CMD /app/hello.sh\n",
        {"container-writable-layer-small", "container-dirs-small", "cmd-layer-empty"},
    ),
}


def make_variant(name: str, dest: Path) -> Path:
    """A copy of lab 07 in `dest` with the variant's Dockerfile-my-image; returns the lab folder."""
    dockerfile, _ = VARIANTS[name]
    folder = dest / f"07-{name}"
    shutil.copytree(LAB07, folder)
    (folder / "course" / "Dockerfile-my-image").write_text(dockerfile)
    return folder


# ------------------------------------------------------------------------------- the course's other labs


@dataclass(frozen=True)
class Variant:
    """A lab done in a world where some of its claims are false: other commands typed for some steps
    (`steps`: step id -> the command), other course files (`files`: path -> (old text, new text)), a machine
    changed around the run (`setup` before, `teardown` after, shell as the login user, sudo where needed).
    `fails`: exactly the claims that must fail; `not_judged`: those a failed step leaves unjudged."""

    lab: str
    name: str
    fails: frozenset[str]
    steps: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    sets: dict = field(default_factory=dict)
    args: tuple = ()  # more check-lab arguments (a short --timeout-factor where a wait can only end in vain)
    setup: str = ""
    teardown: str = ""
    not_judged: frozenset[str] = frozenset()

    @property
    def id(self) -> str:
        return f"{self.lab[:2]}-{self.name}"


def _v(lab: str, name: str, fails: set[str], **kw) -> Variant:
    return Variant(lab, name, frozenset(fails), **{k: frozenset(v) if k == "not_judged" else v for k, v in kw.items()})


COURSE_VARIANTS: list[Variant] = [
    # 02: an image that greets someone else and logs nothing, listed nowhere; then a container named otherwise
    # whose app says something else without Redis.
    _v("02-Build_your_image", "other-image", {"image-built", "hello-world-page", "request-logged"},
       files={"course/Dockerfile": [("ENV NAME World", "ENV NAME Docker"),
                                    ('CMD ["python", "app.py"]', "CMD exec python app.py 2>/dev/null")]},
       steps={"image-ls": "docker image ls --filter reference=no-such-image"}),
    _v("02-Build_your_image", "other-container", {"hostname-is-the-container", "no-redis-counter"},
       files={"course/py_app/app.py": [("counter disabled", "no counter")]},
       steps={"run": "docker run -d --hostname web -p 4000:80 friendlyhello:1.0"}),
    # 03: no login of one's own; then an image tagged from another one (it runs nothing), never forgotten.
    _v("03-Docker_image_sharing", "not-logged-in", {"logged-in"},
       sets={"registry": "{hub}", "user": "{user}"}, setup="docker logout {hub} >/dev/null",
       teardown="{login}",
       not_judged={"tagged", "same-image", "pushed", "pulled-from-registry", "app-answers"}),
    # 03: the listing of friendlyhello alone, where the new name does not show.
    _v("03-Docker_image_sharing", "listed-elsewhere", {"tagged"},
       sets={"registry": "{hub}", "user": "{user}"},
       steps={"images": "docker images friendlyhello"}),
    _v("03-Docker_image_sharing", "other-image-kept", {"same-image", "pulled-from-registry", "app-answers"},
       sets={"registry": "{hub}", "user": "{user}"},
       steps={"tag": "docker tag python:2.7-slim {{ registry }}/{{ user }}/friendlyhello:1.0",
              "forget": "true"}),
    _v("03-Docker_image_sharing", "push-refused", {"pushed"},
       sets={"registry": "{hub}", "user": "{user}"},
       steps={"push": "docker push {{ registry }}/{{ user }}/friendlyhello:1.1"},
       not_judged={"pulled-from-registry", "app-answers"}),
    # 04: a listing without the volume, and a volume whose data is in memory; a volume not empty at first;
    # a mount that copies nothing and a container never removed; a container without the volume.
    # (A tmpfs volume is a new tmpfs in each container: the files copied into it do not reach the next one.)
    _v("04-Volumes", "tmpfs-volume", {"volume-listed", "volume-under-engine", "container-fills-empty-volume"},
       steps={"create": "docker volume create --opt type=tmpfs --opt device=tmpfs my-vol",
              "ls": "docker volume ls --filter name=no-such-volume"}),
    _v("04-Volumes", "not-empty", {"empty-at-first", "container-fills-empty-volume"},
       steps={"create": "docker volume create my-vol && docker run --rm -v my-vol:/app busybox touch /app/left-over"}),
    # (`touch` leaves an empty file: `ls -l` still prints total 0, then the file.)
    _v("04-Volumes", "nocopy-and-kept", {"container-fills-empty-volume", "removed-when-unused"},
       steps={"devtest": "docker run -d --name devtest --mount source=my-vol,target=/app,volume-nocopy "
                         "friendlyhello:1.0",
              "rm": "true"}),
    _v("04-Volumes", "no-volume", {"container-fills-empty-volume", "in-use-not-removable"},
       steps={"devtest": "docker run -d --name devtest friendlyhello:1.0"}),
    # 05: a class compiled inside the container only; then a program that says something else, mounted
    # writable.
    _v("05-Bind_mounts", "compiled-elsewhere", {"compiled-into-the-machines-folder", "runs-from-the-machines-folder"},
       steps={"compile": "docker run --rm -v $(pwd)/app:/app/ openjdk:7 javac -d /tmp -cp /app /app/Main.java"},
       not_judged={"runs-read-only", "read-only-refuses-writes"}),
    _v("05-Bind_mounts", "other-program-writable",
       {"runs-from-the-machines-folder", "runs-read-only", "read-only-refuses-writes"},
       files={"course/app/Main.java": [("Hello from a Java app!", "Hello from elsewhere")]},
       steps={"write-readonly": "docker run --rm --mount type=bind,source=$(pwd)/app,target=/app/ openjdk:7 "
                                "touch /app/written-by-the-container"}),
    # 06: the logs on the machine's disk; requests that go elsewhere.
    _v("06-TMPFS_mounts", "logs-on-disk", {"logs-on-tmpfs", "empty-after-restart"},
       steps={"run": "mkdir -p \"$LAB_DIR/logs\" && docker run -d -p 4000:80 "
                     "--mount type=bind,source=\"$LAB_DIR/logs\",destination=/var/log/nginx nginx:latest"}),
    _v("06-TMPFS_mounts", "requests-elsewhere", {"access-log-grows"},
       steps={"requests": "for i in $(seq {{ requests }}); do curl -s http://localhost:4001 >/dev/null || true; done"}),
    # 08: the default bridge instead of none.
    _v("08-None_network_model", "on-the-bridge", {"only-loopback", "network-unreachable"},
       steps={"ifconfig": "docker run --rm --net bridge busybox ifconfig",
              "ping": "docker run --rm --net bridge busybox ping -c 1 -W 2 8.8.8.8"}),
    # 09: the machine's own interfaces, and a machine that drops the containers' pings; container_2 on the
    # default bridge and container_3 never disconnected; container_1 on the new network; the wrong container
    # connected; the wrong network looked at.
    _v("09-Bridge_network_model", "host-ifconfig-icmp-dropped", {"bridge-address", "out-through-the-bridge"},
       steps={"ifconfig": "docker run --rm --net host busybox ifconfig"},
       setup="sudo iptables -I INPUT -i docker0 -p icmp -j DROP",
       teardown="sudo iptables -D INPUT -i docker0 -p icmp -j DROP"),
    _v("09-Bridge_network_model", "default-bridge-never-disconnected",
       {"resolves-on-own-network", "unreachable-when-disconnected"},
       steps={"container-2": "docker run --rm -d --name container_2 --net bridge busybox sleep 1000",
              "disconnect": "true"}),
    _v("09-Bridge_network_model", "container-1-on-the-new-network",
       {"no-name-on-default-bridge", "unreachable-when-disconnected"},
       steps={"container-1": "docker run --rm -d --name container_1 --net my_bridge_network busybox sleep 1000"}),
    _v("09-Bridge_network_model", "other-container-connected", {"second-interface", "reachable-when-connected"},
       steps={"connect": "docker network connect bridge container_2",
              "disconnect": "docker network disconnect bridge container_2"}),
    _v("09-Bridge_network_model", "wrong-network-looked-at", {"new-network-listed", "own-subnet"},
       steps={"networks-after": "docker network ls --filter name=^bridge$",
              "new-subnet": "docker network inspect bridge | grep Subnet"}),
    # 10: nginx on the bridge with its port published, and again in the addition; a machine refusing port 80.
    _v("10-Host_network_model", "published-on-the-bridge", {"on-host-network", "bridge-needs-p"},
       steps={"run": "docker run --rm -d -p 80:80 nginx",
              "bridge": "c=$(docker run --rm -d -p 80:80 nginx)\n"
                        "ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' \"$c\")\n"
                        "for i in $(seq 30); do curl -s -o /dev/null --max-time 1 \"http://$ip:80\" && break; "
                        "sleep 0.5; done\n"
                        "curl -s -o /dev/null --max-time 1 \"http://$ip:80\" && echo \"nginx answers on its own "
                        "address $ip\"\n"
                        "sleep 1; curl -s --max-time 3 http://localhost:80 || echo \"curl exit $?\"\n"
                        "docker stop \"$c\" >/dev/null"}),
    _v("10-Host_network_model", "port-80-refused", {"answers-on-port-80"},
       setup="sudo iptables -I INPUT -i lo -p tcp --dport 80 -j REJECT",
       teardown="sudo iptables -D INPUT -i lo -p tcp --dport 80 -j REJECT"),
    # 16: one processor of two to choose from, and a JVM that does not look at the container's limits.
    # 13: MySQL without its root password (the image refuses to start), so WordPress never gets its database;
    # MySQL's data on an anonymous volume (the db service without its `volumes:`); WordPress with a wrong
    # database password; only the db service started; the project stopped instead of removed.
    _v("13-Docker_Compose", "no-root-password", {"mysql-running", "install-page"},
       files={"course/docker-compose.yml": [("       MYSQL_ROOT_PASSWORD: somewordpress\n", "")]},
       args=("--timeout-factor", "0.25")),
    _v("13-Docker_Compose", "anonymous-data", {"db-on-volume"},
       files={"course/docker-compose.yml": [("     volumes:\n       - db_data:/var/lib/mysql\n", "")]}),
    _v("13-Docker_Compose", "wrong-password", {"install-page"},
       files={"course/docker-compose.yml": [("WORDPRESS_DB_PASSWORD: wordpress",
                                             "WORDPRESS_DB_PASSWORD: not-the-password")]},
       args=("--timeout-factor", "0.25")),
    _v("13-Docker_Compose", "db-only", {"wordpress-running", "install-page"},
       steps={"up": 'docker-compose -f "$LAB_DIR"/13-Docker_Compose/docker-compose.yml up -d db'},
       args=("--timeout-factor", "0.25")),
    _v("13-Docker_Compose", "stopped-not-removed", {"down-removes-everything"},
       steps={"down": 'docker-compose -f "$LAB_DIR"/13-Docker_Compose/docker-compose.yml stop'}),
    # 14: no volume of its own, its data in memory (a tmpfs: without any mount, Portainer's image would make an
    # anonymous volume); its web port not published and no engine socket; Portainer asked for its help, which
    # it prints, and ends.
    _v("14-Portainer", "data-in-memory", {"volume-created", "data-on-volume"},
       steps={"volume": "true",
              "run": "docker run -d -p 8000:8000 -p 9000:9000 -v /var/run/docker.sock:/var/run/docker.sock "
                     "--mount type=tmpfs,destination=/data portainer/portainer"}),
    _v("14-Portainer", "unpublished", {"manages-this-engine", "answers-on-9000", "asks-initial-password"},
       steps={"run": "docker run -d -p 8000:8000 -v portainer_data:/data portainer/portainer"}),
    _v("14-Portainer", "exits-at-once", {"runs-detached", "answers-on-9000", "asks-initial-password"},
       steps={"run": "docker run -d -p 8000:8000 -p 9000:9000 -v /var/run/docker.sock:/var/run/docker.sock "
                     "-v portainer_data:/data portainer/portainer --help"}),
    # 15: the first JVM in a container limited to 300 MiB; the second told to ignore its container's limit.
    _v("15-Memory_limits", "limited-and-blind", {"sees-machine-memory", "follows-memory-limit"},
       steps={"java": "docker run --rm --memory 300m -v $(pwd)/app:/app/ openjdk:11.0-jdk "
                      "/usr/local/openjdk-11/bin/java -XX:MaxRAMFraction=1 /app/MaxMemory.java",
              "java-500m": "docker run --rm --memory 500m -e JAVA_TOOL_OPTIONS=-XX:-UseContainerSupport "
                           "-v $(pwd)/app:/app/ openjdk:11.0-jdk /usr/local/openjdk-11/bin/java "
                           "-XX:MaxRAMFraction=1 /app/MaxMemory.java"}),
    _v("16-CPU_limits", "pinned-and-blind", {"sees-every-processor", "sees-one-with-cpus-1"},
       steps={"java": "docker run --rm --cpuset-cpus 0 -v $(pwd)/app:/app/ openjdk:11.0-jdk "
                      "/usr/local/openjdk-11/bin/java /app/MaxProcessors.java",
              "java-one-cpu": "docker run --rm --cpus 1 -e JAVA_TOOL_OPTIONS=-XX:-UseContainerSupport "
                              "-v $(pwd)/app:/app/ openjdk:11.0-jdk /usr/local/openjdk-11/bin/java "
                              "/app/MaxProcessors.java"}),
    # 17: the runs without limits pinned to CPU 0, those on CPU 0 not pinned; the loop in the machine's PID
    # namespace (--pid host: one PID inside and out); jcmd's version of the JVM instead of its threads.
    _v("17-Java_Docker_awareness", "pinned-unpinned-same-pid",
       {"jdk8-sees-the-machine", "jdk8-ignores-shares-and-memory", "jdk8-counts-the-cpu-set", "jdk8-heap-flag-one-core",
        "jdk9-one-core", "jdk10-one-core", "container-support-off", "pid-differs", "thread-dump"},
       steps={"jdk8": "docker run --rm --cpuset-cpus 0 docker-test:jdk8",
              "jdk8-limited": "docker run --rm --cpuset-cpus 0 -c 512 -m 512MB docker-test:jdk8",
              "jdk8-cpuset": "docker run --rm -m 512MB docker-test:jdk8",
              "jdk8-heap-flag": 'docker run --rm -m 512MB -e JAVA_OPT="-XX:+UnlockExperimentalVMOptions '
                                '-XX:+UseCGroupMemoryLimitForHeap" docker-test:jdk8',
              "jdk9-heap-flag": 'docker run --rm -m 512MB -e JAVA_OPT="-XX:+UnlockExperimentalVMOptions '
                                '-XX:+UseCGroupMemoryLimitForHeap" docker-test:jdk9',
              "jdk10-cpuset": "docker run --rm -m 512MB docker-test:jdk10",
              "jdk10-no-support": "docker run --rm --cpuset-cpus 0 -c 512 -m 512MB -e JAVA_OPT=-XX:-UseContainerSupport "
                                  "docker-test:jdk10",
              "loop": "docker run -d --rm --pid host -e JAVA_OPT=-Dloop=true docker-test:jdk10",
              "jstack": "docker exec {{ captured.cid }} sh -c '/jdk-10/bin/jcmd $(/jdk-10/bin/jps | grep DockerTest | "
                        "cut -d\" \" -f1) VM.version'"}),
]

# Lab 11 runs on the course's three swarm machines (tests/integration/test_swarm.py, fresh machines for each
# world): swarmnode2 that never joins; a service of 4 replicas; one scaled to 3 (the run asks for 6); a
# service that is kept; a join that fails. The routing mesh's negative needs a kernel with IP_VS (not this host's): its check is
# judged on recorded answers in tests/unit/test_swarm_claims.py.
SWARM_VARIANTS: list[Variant] = [
    _v("11-Docker-Swarm_cluster", "one-worker", {"three-nodes-ready"}, steps={"join-node2": "true"}),
    _v("11-Docker-Swarm_cluster", "four-replicas", {"five-replicas"},
       steps={"create": "docker service create --replicas 4 -p 4000:80 --name web nginx"}),
    _v("11-Docker-Swarm_cluster", "scaled-to-three", {"scaled-replicas"}, steps={"scale": "docker service scale web=3"}),
    _v("11-Docker-Swarm_cluster", "service-kept", {"service-removed"}, steps={"rm": "true"}),
    # A join that fails (a token of no swarm): the lab stops there, nothing is judged, every machine is left
    # out of the swarm the lab made.
    _v("11-Docker-Swarm_cluster", "bad-token", set(),
       steps={"join-node1": "docker swarm join --token SWMTKN-1-0000000000000000000000000000000000000000000000000-"
                            "0000000000000000000000000 {{ captured.join_address }}"},
       not_judged={"three-nodes-ready", "manager-leader", "five-replicas", "routing-mesh", "scaled-replicas",
                   "service-removed"}),
    # 12: a network of the manager only (bridge): swarmnode1 has no such network, the lab stops at its
    # container; one not attachable: swarmnode1 may not attach a container, likewise; one not encrypted (its
    # traffic is then judged, and flows on any kernel); another subnet; busybox1 on the default bridge.
    _v("12-Overlay_network_with_Swarm", "local-bridge", {"overlay-network"},
       steps={"create-network": "docker network create --driver bridge --attachable --opt encrypted "
                                "--subnet=172.19.0.0/16 my-overlay-network"},
       not_judged={"address-in-subnet", "reaches-across-nodes"}),
    _v("12-Overlay_network_with_Swarm", "not-attachable", {"attachable"},
       steps={"create-network": "docker network create --driver overlay --opt encrypted --subnet=172.19.0.0/16 "
                                "my-overlay-network"},
       not_judged={"address-in-subnet", "reaches-across-nodes"}),
    _v("12-Overlay_network_with_Swarm", "not-encrypted", {"encrypted"},
       steps={"create-network": "docker network create --driver overlay --attachable --subnet=172.19.0.0/16 "
                                "my-overlay-network"}),
    _v("12-Overlay_network_with_Swarm", "other-subnet", {"subnet"},
       steps={"create-network": "docker network create --driver overlay --attachable --opt encrypted "
                                "--subnet=172.21.0.0/16 my-overlay-network"}),
    _v("12-Overlay_network_with_Swarm", "default-bridge", {"address-in-subnet"},
       steps={"run-busybox1": "docker run -d --rm --name busybox1 busybox sleep 1000"}),
]


def make_course_variant(variant: Variant, dest: Path) -> Path:
    """A copy of the variant's lab in `dest`, with its files and steps changed; returns the lab folder."""
    import yaml

    # Beside the course's other labs (a lab may use a sibling's files, as lab 04 uses lab 02's).
    labs = dest / f"labs-{variant.id}"
    labs.mkdir()
    for other in (REPO / "labs").iterdir():
        if other.name != variant.lab and (other / "lab.yaml").is_file():
            (labs / other.name).symlink_to(other)
    folder = labs / variant.lab
    shutil.copytree(REPO / "labs" / variant.lab, folder)
    for rel, edits in variant.files.items():
        text = (folder / rel).read_text()
        for old, new in edits:
            assert old in text, f"{variant.id}: {old!r} is not in {rel}"
            text = text.replace(old, new)
        (folder / rel).write_text(text)
    if variant.steps:
        data = yaml.safe_load((folder / "lab.yaml").read_text())
        by_id = {step["id"]: step for step in data["steps"]}
        for step_id, run in variant.steps.items():
            by_id[step_id]["run"] = run
        (folder / "lab.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder
