"""Record what a real engine answers to each resource kind's commands, for the unit tests to replay.

    python -m tests.record_resources NAME [--target SPEC]

Against a lab machine (default: the Vagrant machine of this folder) it makes one resource of every kind
(image, container with a published port, volume, network, a Compose project, a swarm with a service and a
stack), asks each kind's `find` about it and about a name that does not exist, removes them with each kind's
`remove` (a port goes with its container), and asks again; every command and answer goes to tests/transcripts/resources/NAME.json. The machine is left
as it was (the swarm it made is left again; Compose is installed from the machine's own apt sources if
it is missing, and stays).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from checker.resources import KINDS
from checker.targets import TargetOptions, open_target

OUT = Path(__file__).resolve().parent / "transcripts" / "resources"

# Each kind: the names the lab would list (one that will exist, one that never does).
NAMES = {
    "images": ["cl-rec-image:1.0", "cl-rec-missing:1.0"],
    "pulls": ["ubuntu:18.04", "cl-rec-missing:2.0"],
    "containers": ["cl_rec_container", "cl_rec_missing"],
    "unnamed_containers": ["hello-world", "cl-rec-missing-image"],
    "volumes": ["cl-rec-volume", "cl-rec-missing-volume"],
    "networks": ["cl-rec-network", "cl-rec-missing-network"],
    "compose_projects": ["clrecproject", "clrecmissing"],
    "services": ["cl-rec-service", "cl-rec-missing-service"],
    "stacks": ["clrecstack", "clrecmissingstack"],
    "swarm": ["default"],
    "ports": ["4999", "4998"],  # cl_rec_container publishes 4999
}

COMPOSE = """version: "3"
services:
  app:
    image: ubuntu:18.04
    command: sleep 600
    volumes: [data:/data]
    networks: [back]
volumes:
  data: {}
networks:
  back: {}
"""

SETUP = [
    "docker pull -q ubuntu:18.04 >/dev/null",
    "docker tag ubuntu:18.04 cl-rec-image:1.0",
    "docker run -d --name cl_rec_container -p 127.0.0.1:4999:80 ubuntu:18.04 sleep 600 >/dev/null",
    "docker run hello-world >/dev/null",
    "docker volume create cl-rec-volume >/dev/null",
    "docker network create cl-rec-network >/dev/null",
    "command -v docker-compose >/dev/null || (sudo -n apt-get update -qq && "
    "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null)",
    "mkdir -p ~/clrec && cd ~/clrec && printf '%s' {compose} > docker-compose.yml && "
    "docker-compose -p clrecproject up -d",
]
SWARM = [
    "docker swarm init --advertise-addr $(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n 1) "
    ">/dev/null",
    "docker service create --detach --name cl-rec-service ubuntu:18.04 sleep 600 >/dev/null",
    "cd ~/clrec && docker stack deploy -c docker-compose.yml clrecstack >/dev/null",
]
UNDO = ("docker rm -f cl_rec_container; docker rmi cl-rec-image:1.0; docker volume rm cl-rec-volume; "
        "docker network rm cl-rec-network; cd ~/clrec 2>/dev/null && docker-compose -p clrecproject down -v; "
        "docker swarm leave --force; rm -rf ~/clrec; true")


def main(argv: list[str]) -> int:
    import shlex

    parser = argparse.ArgumentParser(prog="record_resources")
    parser.add_argument("name", help="the engine's name, e.g. e1-bookworm-docker20")
    parser.add_argument("--target", default=None)
    args = parser.parse_args(argv)
    t = open_target(TargetOptions(args.target))
    calls: list[dict] = []

    def run(command: str, record: str | None = None, timeout: float = 300) -> None:
        res = t.run(command, timeout=timeout)
        if record:
            calls.append({"step": record, "command": command, "result": asdict(res)})
        elif not res.ok:
            raise SystemExit(f"record_resources: {command[:80]}… failed: {res.stderr[-500:]}")

    had_base = t.run("docker image inspect ubuntu:18.04 >/dev/null 2>&1", timeout=60).ok
    started = int(t.run("date +%s", timeout=30).stdout.strip())
    try:
        for command in SETUP:
            run(command.replace("{compose}", shlex.quote(COMPOSE)))
        for key in ("services", "stacks"):  # no swarm yet: not a manager
            run(KINDS[key].find(NAMES[key]), f"{key}:find:no-swarm")
        run(KINDS["swarm"].find(NAMES["swarm"]), "swarm:find:absent")
        for command in SWARM:
            run(command)
        run("sleep 3")
        for key, kind in KINDS.items():
            run(kind.find(NAMES[key]), f"{key}:find")
        for key in ("stacks", "services", "compose_projects", "containers", "unnamed_containers", "images", "volumes",
                    "networks", "swarm"):
            run(KINDS[key].remove(NAMES[key], started - 1), f"{key}:remove")
            if key == "stacks":
                run("sleep 5")
            run(KINDS[key].find(NAMES[key]), f"{key}:find:after-remove")
        run(KINDS["ports"].find(NAMES["ports"]), "ports:find:after-remove")  # freed with the container
        run(KINDS["containers"].set_aside("cl_rec_container", "x"), "containers:set-aside:missing")
    finally:
        t.run(UNDO + "; docker rmi hello-world >/dev/null 2>&1"
              + ("" if had_base else "; docker rmi ubuntu:18.04 >/dev/null 2>&1") + "; true", timeout=120)
        t.close()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.name}.json").write_text(json.dumps({"engine": args.name, "calls": calls}, indent=1) + "\n")
    print(f"recorded {len(calls)} answers to {OUT / (args.name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
