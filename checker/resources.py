"""Resource kinds: what a lab's commands create on a machine, and how the checker guards and removes it.

lab.yaml's `resources:` lists, per kind, the names the lab creates (validated against KINDS). Each kind
says, as shell commands the runner sends in one round trip per phase:

- `find(names)`: which of the names exist, in one command (and when each was created, if Docker says);
- `remove(names)`: remove those that exist, printing the names removed;
- `set_aside(name)` / `put_back(name)`: move someone else's resource out of the way for the run and back
  afterwards (`--replace`), for kinds that can be renamed; the others cannot be set aside, and a name
  clash stops the run (exit 3).

A kind that `removes` nothing only guards: the ports a lab publishes must be free when it starts (a
listener found then is someone else's, never stopped); the lab's own containers and services free them.

Who created a resource is told by the run's state file on the machine (`~/.check-lab/run-LAB.json`): it
records when the run started and which of the lab's names existed before it. A name found by the next run
that did not exist before an interrupted run, and (where Docker records it) was created after that run
started, is its leftover and is removed; any other is someone else's. A pulled image that is there already
is never the run's: it is kept, and only an image the run itself pulled is removed afterwards.

A new kind is one class here and one line in KINDS.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone

from checker.parsers import parse_json_lines
from checker.records import Result, says_missing

SAVED_SUFFIX = "-check-lab-saved"


class ResourceError(Exception):
    """The machine did not say which resources exist (the engine failed, not a missing name)."""


@dataclass(frozen=True)
class Found:
    name: str
    created: float | None = None  # seconds since the epoch, when Docker records it
    id: str = ""


def quote(*words: str) -> str:
    return " ".join(shlex.quote(w) for w in words)


def epoch(created: str) -> float | None:
    """Docker's timestamps (RFC 3339 with nanoseconds, or `date time +0000 UTC`) as seconds since the epoch."""
    if not created:
        return None
    text = created.replace(" UTC", "").replace("Z", "+00:00")
    text = re.sub(r"^(\S+) (\S+) ([+-]\d\d)(\d\d)$", r"\1T\2\3:\4", text)  # "date time +0000"
    if "." in text:
        head, frac = text.split(".", 1)
        digits = "".join(ch for ch in frac if ch.isdigit())
        tz = frac[len(digits):]
        text = f"{head}.{digits[:6]}{tz}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _json_lines(res: Result, what: str) -> list[dict]:
    return parse_json_lines(res.stdout, lambda line: ResourceError(f"{what}: unexpected output {line[:100]!r}"))


def until_gone(var: str) -> str:
    """Shell: wait (up to about 15 s) until the container whose name or ID is in $var is gone. A container
    started with `--rm` is removed by the engine after it stops, and while that lasts `docker rm -f` refuses
    ("removal ... is already in progress") and the image it was made from cannot be removed."""
    return (f'k=0; while docker container inspect "${var}" >/dev/null 2>&1 && [ $k -lt 60 ]; '
            'do sleep 0.25; k=$((k + 1)); done')


def _missing_only(res: Result) -> bool:
    """A failed inspect that only says some names do not exist."""
    low = res.stderr.lower()
    # (Podman warns on every command, e.g. of cgroup v1's deprecation: a warning is no error.)
    lines = [ln for ln in low.splitlines() if ln.strip() and "level=warning" not in ln]
    return bool(lines) and all(says_missing(ln) for ln in lines)


class Kind:
    """A kind of resource (subclasses below). `key` is its name in lab.yaml."""

    key = ""
    noun = ""
    what_removed = ""  # for the report: "removed the lab's containers (…)"
    cleanup_order = 50  # lower goes first: what uses a resource goes before it
    guards = True  # a name that exists already is someone else's (False: pulled images, kept as they are)
    can_set_aside = False
    created_is_creation = True  # whether Docker's creation time is when the name appeared
    removes = True  # False: only guarded (found before the run: someone else's), freed by the other kinds
    clash_hint = ""  # what to do when a kind that only guards finds its names taken (with its clash())

    def find(self, names: list[str]) -> str:
        raise NotImplementedError

    def parse(self, res: Result, names: list[str]) -> dict[str, Found]:
        raise NotImplementedError

    def remove(self, names: list[str], since: float | None = None) -> str:
        raise NotImplementedError

    def backup_name(self, name: str) -> str:
        return f"{name}{SAVED_SUFFIX}"

    def set_aside(self, name: str, backup: str) -> str:
        raise NotImplementedError(f"a {self.noun} cannot be set aside")

    def put_back(self, name: str, backup: str) -> str:
        raise NotImplementedError(f"a {self.noun} cannot be set aside")

    def check_name(self, name: str) -> str | None:
        """Why `name` cannot be one of the lab's resources (None: it can)."""
        return None


class _Inspected(Kind):
    """Kinds Docker inspects by name: `docker KIND inspect NAME…` prints the ones that exist."""

    command = ""  # docker's object: image, container, volume, network, service

    def find(self, names: list[str]) -> str:
        return shlex.join(["docker", self.command, "inspect", "--format", "{{json .}}", *names])

    def parse(self, res: Result, names: list[str]) -> dict[str, Found]:
        if not res.ok and not _missing_only(res):
            raise ResourceError(f"docker {self.command} inspect failed: {res.first_error_line()}")
        found: dict[str, Found] = {}
        for item in _json_lines(res, f"docker {self.command} inspect"):
            for name in self.names_of(item):
                if name in names:
                    found[name] = Found(name, epoch(str(self.created_of(item))), str(item.get("Id") or item.get("ID") or ""))
        return found

    def names_of(self, item: dict) -> list[str]:
        return [str(item.get("Name", ""))]

    def created_of(self, item: dict) -> str:
        return str(item.get("CreatedAt") or item.get("Created") or "")


class Images(_Inspected):
    key, noun, command = "images", "image", "image"
    what_removed = "the lab's images"
    cleanup_order = 20
    can_set_aside = True
    created_is_creation = False  # Created is when the image was built; a tag can come much later

    def parse(self, res: Result, names: list[str]) -> dict[str, Found]:
        if not res.ok and not _missing_only(res):
            raise ResourceError(f"docker image inspect failed: {res.first_error_line()}")
        found: dict[str, Found] = {}
        for item in _json_lines(res, "docker image inspect"):
            tags = {normal_ref(t) for t in item.get("RepoTags") or []}
            for name in names:
                if normal_ref(name) in tags:
                    found[name] = Found(name, epoch(str(item.get("Created") or "")), str(item.get("Id", "")))
        return found

    def remove(self, names: list[str], since: float | None = None) -> str:
        # Children before parents (my-image before my-base-image); print those that were there and are gone.
        script = (f"e=; for n in {quote(*reversed(names))}; do docker image inspect \"$n\" >/dev/null 2>&1 && "
                  'e="$e $n"; done; [ -z "$e" ] || docker rmi $e >/dev/null 2>&1; for n in $e; do '
                  'docker image inspect "$n" >/dev/null 2>&1 || echo "$n"; done')
        if since is not None and self.key == "images":
            # A build ended half-way (Ctrl-C) leaves an untagged image made since the run started: it goes too.
            after = datetime.fromtimestamp(since, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            script += ("; TZ=UTC docker image ls --no-trunc --filter dangling=true --format '{{.ID}} {{.CreatedAt}}' "
                       "| awk -v after=" + shlex.quote(after) + " '(substr($2 \" \" $3, 1, 19)) >= after {print $1}' "
                       "| xargs -r docker rmi >/dev/null 2>&1")
        return script + "; true"

    def backup_name(self, ref: str) -> str:
        repo, _, tag = ref.rpartition(":")
        if not repo or "/" in tag:
            repo, tag = ref, "latest"
        return f"{repo}:{tag}{SAVED_SUFFIX}"

    def set_aside(self, name: str, backup: str) -> str:
        return f"docker tag {shlex.quote(name)} {shlex.quote(backup)} && docker rmi {shlex.quote(name)}"

    def put_back(self, name: str, backup: str) -> str:
        return f"docker tag {shlex.quote(backup)} {shlex.quote(name)} && docker rmi {shlex.quote(backup)}"


class Pulls(Images):
    """Images the lab pulls: one that is there already is kept as it is (the student's, or in use)."""

    key, noun = "pulls", "pulled image"
    what_removed = "the image(s) the lab pulled"
    cleanup_order = 30
    guards = False
    can_set_aside = False


class Containers(_Inspected):
    key, noun, command = "containers", "container", "container"
    what_removed = "the lab's containers"
    cleanup_order = 10
    can_set_aside = True

    def names_of(self, item: dict) -> list[str]:
        return [str(item.get("Name", "")).lstrip("/")]

    def remove(self, names: list[str], since: float | None = None) -> str:
        # Those that were there and are gone (one started with --rm may be gone only once the engine is done).
        return (f"e=; for n in {quote(*names)}; do docker container inspect \"$n\" >/dev/null 2>&1 && e=\"$e $n\"; "
                'done; [ -z "$e" ] || docker rm -f $e >/dev/null 2>&1; for n in $e; do ' + until_gone("n") +
                '; docker container inspect "$n" >/dev/null 2>&1 || echo "$n"; done; true')

    def set_aside(self, name: str, backup: str) -> str:
        return shlex.join(["docker", "rename", name, backup])

    def put_back(self, name: str, backup: str) -> str:
        return shlex.join(["docker", "rename", backup, name])


class UnnamedContainers(Kind):
    """Containers the lab's commands start without a name (`docker run hello-world`), listed by their image.
    They never clash with anything; those created since the run started are the run's, and go afterwards
    (the student's older ones from the same image stay)."""

    key, noun = "unnamed_containers", "container"
    what_removed = "the containers the lab started without a name"
    cleanup_order = 11
    guards = False

    def find(self, names: list[str]) -> str:
        return (f"for i in {quote(*names)}; do docker ps -a --no-trunc --filter \"ancestor=$i\" "
                "--format \"$i|{{.ID}}|{{.CreatedAt}}\"; done")

    def parse(self, res: Result, names: list[str]) -> dict[str, Found]:
        if not res.ok:
            raise ResourceError(f"docker ps failed: {res.first_error_line()}")
        found: dict[str, Found] = {}
        for line in res.stdout.splitlines():
            image, _, rest = line.partition("|")
            cid, _, created = rest.partition("|")
            when = epoch(created.strip())
            if image in names and cid and (image not in found or (when or 0) > (found[image].created or 0)):
                found[image] = Found(image, when, cid)  # the newest container of each image
        return found

    def remove(self, names: list[str], since: float | None = None) -> str:
        if since is None:
            return "true"  # without a start time nothing can be told apart: remove nothing
        after = datetime.fromtimestamp(since, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        return (f"for i in {quote(*names)}; do TZ=UTC docker ps -a --no-trunc --filter \"ancestor=$i\" "
                "--format '{{.ID}} {{.CreatedAt}}' | awk -v after=" + shlex.quote(after) +
                " '(substr($2 \" \" $3, 1, 19)) >= after {print $1}' | while read -r id; do "
                'docker rm -f "$id" >/dev/null 2>&1; ' + until_gone("id") +
                '; docker container inspect "$id" >/dev/null 2>&1 || echo "$i"; done; done | sort -u')


class Volumes(_Inspected):
    key, noun, command = "volumes", "volume", "volume"
    what_removed = "the lab's volumes"
    cleanup_order = 40  # after the containers that use them

    def remove(self, names: list[str], since: float | None = None) -> str:
        # Only those that exist (`volume rm` of a missing one fails the whole call on old engines).
        return (f"for v in {quote(*names)}; do docker volume inspect \"$v\" >/dev/null 2>&1 || continue; "
                'docker volume rm "$v"; done')


RESERVED_NETWORKS = {"bridge", "host", "none", "ingress", "docker_gwbridge"}


class Networks(_Inspected):
    key, noun, command = "networks", "network", "network"
    what_removed = "the lab's networks"
    cleanup_order = 45

    def remove(self, names: list[str], since: float | None = None) -> str:
        return (f"for n in {quote(*names)}; do docker network inspect \"$n\" >/dev/null 2>&1 || continue; "
                'docker network rm "$n"; done')

    def check_name(self, name: str) -> str | None:
        if name in RESERVED_NETWORKS:
            return f"{name!r} is one of Docker's own networks, not the lab's"
        return None


COMPOSE_LABEL = "com.docker.compose.project"


class ComposeProjects(Kind):
    """A Compose project: the containers, networks and volumes labelled with its name (Compose v1 and v2
    label them alike, so no compose command is needed to find or remove one)."""

    key, noun = "compose_projects", "compose project"
    what_removed = "the lab's Compose projects"
    cleanup_order = 5

    def find(self, names: list[str]) -> str:
        return (f"for p in {quote(*names)}; do f=\"label={COMPOSE_LABEL}=$p\"; "
                'c=$(docker ps -aq --filter "$f" | wc -l); n=$(docker network ls -q --filter "$f" | wc -l); '
                'v=$(docker volume ls -q --filter "$f" | wc -l); '
                "t=$(docker ps -a --filter \"$f\" --format '{{.CreatedAt}}' | tail -n 1); "
                '[ "$c$n$v" = 000 ] || printf \'%s\\t%s\\t%s\\t%s\\t%s\\n\' "$p" "$c" "$n" "$v" "$t"; done')

    def parse(self, res: Result, names: list[str]) -> dict[str, Found]:
        if not res.ok:
            raise ResourceError(f"listing Compose projects failed: {res.first_error_line()}")
        found = {}
        for line in res.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) >= 4 and parts[0] in names:
                found[parts[0]] = Found(parts[0], epoch(parts[4].strip()) if len(parts) > 4 else None)
        return found

    def remove(self, names: list[str], since: float | None = None) -> str:
        return (f"for p in {quote(*names)}; do f=\"label={COMPOSE_LABEL}=$p\"; "
                'c=$(docker ps -aq --filter "$f"); n=$(docker network ls -q --filter "$f"); '
                'v=$(docker volume ls -q --filter "$f"); [ -n "$c$n$v" ] || continue; '
                '[ -z "$c" ] || docker rm -f $c >/dev/null; for id in $c; do ' + until_gone("id") + '; done; '
                '[ -z "$n" ] || docker network rm $n >/dev/null; '
                '[ -z "$v" ] || docker volume rm $v >/dev/null; echo "$p"; done')


def _not_a_manager(res: Result) -> bool:
    low = res.stderr.lower()
    return "not a swarm manager" in low or "swarm mode" in low and "not" in low


class Services(_Inspected):
    key, noun, command = "services", "swarm service", "service"
    what_removed = "the lab's swarm services"
    cleanup_order = 2

    def parse(self, res: Result, names: list[str]) -> dict[str, Found]:
        if not res.ok and _not_a_manager(res):
            return {}  # no swarm here (or not a manager): no services of that name
        return super().parse(res, names)

    def names_of(self, item: dict) -> list[str]:
        return [str((item.get("Spec") or {}).get("Name", ""))]

    def remove(self, names: list[str], since: float | None = None) -> str:
        return f"docker service rm {quote(*names)} 2>/dev/null || true"


STACK_LABEL = "com.docker.stack.namespace"


class Stacks(Kind):
    key, noun = "stacks", "swarm stack"
    what_removed = "the lab's swarm stacks"
    cleanup_order = 1

    def find(self, names: list[str]) -> str:
        # The stack exists if a service carries its namespace label; it was created with its first service.
        return (f"docker stack ls --format '{{{{.Name}}}}' >/dev/null || exit $?; for s in {quote(*names)}; do "
                f"ids=$(docker service ls -q --filter \"label={STACK_LABEL}=$s\"); [ -n \"$ids\" ] || continue; "
                "t=$(docker service inspect --format '{{.CreatedAt}}' $ids | sort | head -n 1); "
                "printf '%s\\t%s\\n' \"$s\" \"$t\"; done")

    def parse(self, res: Result, names: list[str]) -> dict[str, Found]:
        if not res.ok:
            if _not_a_manager(res):
                return {}
            raise ResourceError(f"docker stack ls failed: {res.first_error_line()}")
        found = {}
        for line in res.stdout.splitlines():
            name, _, created = line.partition("\t")
            if name in names:
                found[name] = Found(name, epoch(created.strip()))
        return found

    def remove(self, names: list[str], since: float | None = None) -> str:
        # `docker stack rm` returns before the stack's containers are gone and leaves its volumes: wait for the
        # containers (up to 30 s), then remove the volumes too.
        return (f"for s in {quote(*names)}; do f=\"label={STACK_LABEL}=$s\"; "
                '[ -n "$(docker service ls -q --filter "$f")" ] || continue; docker stack rm "$s" >/dev/null || continue; '
                'echo "$s"; i=0; while [ -n "$(docker ps -aq --filter "$f")" ] && [ $i -lt 60 ]; do sleep 0.5; '
                'i=$((i + 1)); done; v=$(docker volume ls -q --filter "$f"); [ -z "$v" ] || docker volume rm $v >/dev/null; '
                "done")


# Leaving a swarm, typed again (up to three times) when the daemon answers with an error and the machine is
# still in the swarm: a worker under load (a TCG guest) can miss dockerd's own deadline ("context deadline
# exceeded"), and sometimes it has left all the same. The last error is what the report shows.
LEAVE = ("left=; n=0; while [ -z \"$left\" ]; do if err=$(docker swarm leave --force 2>&1 >/dev/null); then left=1; "
         "else case \"$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)\" in active|pending|locked) "
         "n=$((n + 1)); [ $n -lt 3 ] || break; sleep 2;; *) left=1;; esac; fi; done; "
         "[ -n \"$left\" ] || printf '%s\\n' \"$err\" >&2; [ -n \"$left\" ]")
LEAVE_ONCE = "docker swarm leave --force >/dev/null"  # what transcripts recorded before LEAVE typed it again


class SwarmMembership(Kind):
    """This machine's membership of a swarm (the lab's `docker swarm init` or `join`). A machine already in
    a swarm the lab did not create is a target error: it is never made to leave."""

    key, noun = "swarm", "swarm membership"
    what_removed = "this machine's swarm membership"
    # After the services and stacks (which go first), before the images the lab pulled: a worker's task
    # containers keep its image in use until it leaves. Leaving takes the swarm's overlay networks with it.
    cleanup_order = 25

    def find(self, names: list[str]) -> str:
        return "docker info --format '{{json .Swarm}}'"

    def parse(self, res: Result, names: list[str]) -> dict[str, Found]:
        if not res.ok:
            raise ResourceError(f"docker info failed: {res.first_error_line()}")
        try:
            swarm = json.loads(res.stdout.strip() or "{}") or {}
        except ValueError:
            raise ResourceError(f"docker info: unexpected output {res.stdout[:100]!r}") from None
        if swarm.get("LocalNodeState") not in ("active", "pending", "locked"):
            return {}
        cluster = swarm.get("Cluster") or {}
        created = epoch(str(cluster.get("CreatedAt") or "")) if swarm.get("ControlAvailable") else None
        return {name: Found(name, created, str(swarm.get("NodeID", ""))) for name in names}

    def remove(self, names: list[str], since: float | None = None) -> str:
        # Leaving also takes the bridge the swarm made for its containers (docker_gwbridge), unless it is in
        # use – and only when it was made after the run began (`since`, in whole seconds): one that was
        # there before is the machine's (an earlier swarm's, left by a plain `leave`, or made by hand to
        # choose its subnet), and stays, even one made in the run's first second (the lab's swarm comes
        # later: its preflight, then `docker swarm init`).
        bridge = ("true" if since is None else
                  "c=$(docker network inspect docker_gwbridge --format '{{.Created.Unix}}' 2>/dev/null) && "
                  f"[ \"${{c:-0}}\" -gt {int(since)} ] && "
                  "docker network rm docker_gwbridge >/dev/null 2>&1 || true")
        return (f"s=$(docker info --format '{{{{.Swarm.LocalNodeState}}}}'); case \"$s\" in active|pending|locked) "
                f"{LEAVE} && printf '%s\\n' {quote(*names)} && "
                # The swarm's task containers go with it (asynchronously): wait for them (up to 30 s), then
                # remove what is left of them, and the bridge.
                "{ i=0; while [ -n \"$(docker ps -aq --filter label=com.docker.swarm.task.id)\" ] && [ $i -lt 60 ]; "
                "do sleep 0.5; i=$((i + 1)); done; t=$(docker ps -aq --filter label=com.docker.swarm.task.id); "
                "[ -z \"$t\" ] || docker rm -f $t >/dev/null 2>&1; "
                "i=0; while docker network inspect ingress >/dev/null 2>&1 && [ $i -lt 20 ]; do sleep 0.5; "
                f"i=$((i + 1)); done; {bridge}; }};; esac")


class Ports(Kind):
    """A TCP port the lab publishes (`docker run -p 4000:80`, a service's routing mesh on every node): the
    machine's listening sockets, read from the kernel (/proc/net/tcp and tcp6, no tool needed). One that
    something listens on before the run is in the way; the checker never stops it."""

    key, noun = "ports", "port"
    what_removed = "nothing (the lab's ports are freed with its containers and services)"
    cleanup_order = 90
    removes = False
    created_is_creation = False
    clash_hint = "stop what listens there (`sudo ss -ltnp` names it), then run again"

    def find(self, names: list[str]) -> str:
        return ("cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | "
                "awk '$4 == \"0A\" { n = split($2, a, \":\"); print a[n] }' | sort -u")

    def parse(self, res: Result, names: list[str]) -> dict[str, Found]:
        words = res.stdout.split()
        if not res.ok or not words or not all(re.fullmatch(r"[0-9A-Fa-f]{4}", w) for w in words):
            # (A machine always listens on something: its SSH server, at least.)
            raise ResourceError(f"reading the listening ports failed: "
                                f"{res.first_error_line() if res.stderr.strip() else repr(res.stdout[:100])}")
        listening = {int(w, 16) for w in words}
        return {name: Found(name) for name in names if name.isdigit() and int(name) in listening}

    def remove(self, names: list[str], since: float | None = None) -> str:
        return "true"

    def check_name(self, name: str) -> str | None:
        if "{{" in name or (name.isdigit() and 0 < int(name) < 65536):
            return None
        return f"{name!r} is not a TCP port number (1-65535)"

    def clash(self, names: list[str]) -> str:
        """The one line of the target error when some of the lab's ports are taken."""
        one = len(names) == 1
        return (f"port{'' if one else 's'} {', '.join(names)} of the target {'is' if one else 'are'} in use "
                f"(something listens there), and the lab publishes {'it' if one else 'them'}")


def normal_ref(ref: str) -> str:
    """An image reference as Docker reads it: docker.io/library/ubuntu:18.04 and ubuntu:18.04 are the same,
    and hello-world is hello-world:latest."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
    last = ref.rsplit("/", 1)[-1]
    return ref if (":" in last or "@" in last) else f"{ref}:latest"


KINDS: dict[str, Kind] = {kind.key: kind for kind in (
    Images(), Containers(), Pulls(), UnnamedContainers(), Volumes(), Networks(), ComposeProjects(), Services(), Stacks(),
    SwarmMembership(), Ports(),
)}


# ------------------------------------------------------------------------------------------------ decisions


@dataclass
class Assessment:
    """What preflight found of the lab's names, and what to do about each (a pure function of the answers)."""

    leftovers: list[tuple[Kind, str]] = field(default_factory=list)  # an interrupted run's: remove
    foreign: list[tuple[Kind, str]] = field(default_factory=list)  # someone else's: stop, or set aside
    pulls_present: set[str] = field(default_factory=set)  # already there: keep
    stale_pulls: list[str] = field(default_factory=list)  # pulled by an interrupted run: remove
    restore: list[tuple[Kind, str, str]] = field(default_factory=list)  # set aside by an interrupted run
    existing: dict[str, list[str]] = field(default_factory=dict)  # for this run's state file

    def blocking(self) -> list[tuple[Kind, str]]:
        return [(k, n) for k, n in self.foreign if not k.can_set_aside]


def kind_of(name: str) -> Kind | None:
    """A kind by its key, or by its noun (state files of earlier versions said `container`, `image`)."""
    return KINDS.get(name) or next((k for k in KINDS.values() if k.noun == name), None)


def assess(found: dict[str, dict[str, Found]], stale: dict | None) -> Assessment:
    """Sort what exists into leftovers of an interrupted run, someone else's, and pulled images present.

    `found`: kind key -> {name: Found}, what exists now; `stale`: the state file of an interrupted run."""
    out = Assessment()
    started = stale.get("started") if stale else None
    before = (stale or {}).get("existing") or {}
    for key, names in found.items():
        kind = KINDS[key]
        out.existing[key] = sorted(names)
        if key == "pulls":
            out.pulls_present |= set(names)
            out.stale_pulls += [ref for ref in names if stale and ref in stale.get("pulled", [])]
            continue
        if not kind.removes:  # in the way until the interrupted run's leftovers are gone (asked again then)
            out.foreign += [(kind, name) for name in names]
            continue
        if not kind.guards:  # never in the way; an interrupted run's own (made since it started) go
            if started is not None:
                out.leftovers += [(kind, name) for name, item in names.items()
                                  if item.created is None or item.created >= started - 1]
            continue
        for name, item in names.items():
            made_since = (not kind.created_is_creation or item.created is None or started is None
                          or item.created >= started - 1)
            if started is not None and name not in before.get(key, []) and made_since:
                out.leftovers.append((kind, name))
            else:
                out.foreign.append((kind, name))
    for entry in (stale or {}).get("moved") or []:
        kind = kind_of(entry[0])
        if kind is not None and kind.can_set_aside:
            out.restore.append((kind, entry[1], entry[2]))
    return out
