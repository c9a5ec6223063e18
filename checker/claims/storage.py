"""Checks about where a container's files live: its mounts (volumes, bind mounts, tmpfs)."""

from __future__ import annotations

from checker.checks import check
from checker.facts import Container, Facts, MissingFact
from checker.records import Verdict, docker_root


@check("mounted", refs={"container": "container"},
       options={"destination": None, "type": None, "source": "", "read_only": ""})
def mounted(facts: Facts, container: list[Container], destination: str, type: str, source: str,
            read_only: str) -> Verdict:
    """The container (a `containers` probe of one) has a mount of `type` (volume, bind, tmpfs) at
    `destination` (from `source`, read-only or not, when given)."""
    if not container:
        raise MissingFact("the container is not there (any more)")
    c = container[0]
    wanted = f"a {type} mount at {destination}" + (f" from {source}" if source else "") + \
        ({"true": ", read-only", "false": ", writable"}.get(str(read_only).lower(), ""))
    found = [m for m in c.mounts if m["destination"].rstrip("/") == destination.rstrip("/")]
    shown = "; ".join(f"{m['type']} {m['source'] or '(no source)'} -> {m['destination']}"
                      f"{'' if m['rw'] else ' (read-only)'}" for m in c.mounts) or "no mounts"
    ok = any(m["type"] == type and (not source or m["source"] == source)
             and (str(read_only).lower() not in ("true", "false") or m["rw"] != (str(read_only).lower() == "true"))
             for m in found)
    return Verdict(ok, f"{c.name or c.id[:12]} has {wanted}", f"mounts: {shown}")


@check("volume_under_engine_root", refs={"inspect": "inspect"}, options={"name": None})
def volume_under_engine_root(facts: Facts, inspect, name: str) -> Verdict:
    """`docker volume inspect NAME` (parse: json): a local volume whose Mountpoint is in the engine's own data
    folder (<Docker Root Dir>/volumes/NAME/_data), judged against the engine in front of us."""
    data = inspect.parsed if inspect.result is not None else None
    if not data:
        raise MissingFact(f"`docker volume inspect {name}` showed nothing" + (" (no such volume now)" if facts.observe
                                                                             else ""),
                          what_to_do="run --observe while the volume exists, or use --watch while you type"
                          if facts.observe else None)
    volume = data[0] if isinstance(data, list) else data
    root = docker_root(facts.engine)
    expected_path = f"{root.rstrip('/')}/volumes/{name}/_data"
    # `--opt type=… --opt device=…` (tmpfs, nfs, a bind): the Mountpoint only shows where it is mounted, the
    # data lives in that device.
    options = volume.get("Options") or {}
    elsewhere = options.get("device") or options.get("type")
    ok = volume.get("Driver") == "local" and volume.get("Mountpoint") == expected_path and not elsewhere
    return Verdict(ok, f"driver local, Mountpoint {expected_path}, no device of its own",
                   f"driver {volume.get('Driver')}, Mountpoint {volume.get('Mountpoint')}"
                   + (f", its data in {options.get('type') or 'a device'} {options.get('device') or ''}".rstrip()
                      if elsewhere else ""))


@check("lists_files", refs={"output": "ls"}, options={"names": None})
def lists_files(facts: Facts, output, names: str) -> Verdict:
    """An `ls -l` step lists each of these files."""
    if output.result is None:
        raise MissingFact(f"step {output.step_id!r} did not run here")
    listed = {line.split()[-1] for line in output.result.stdout.splitlines() if len(line.split()) >= 9}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    missing = [n for n in wanted if n not in listed]
    return Verdict(not missing, f"it lists {', '.join(wanted)}",
                   f"it lists {', '.join(sorted(listed)) or 'nothing'}" + (f"; missing: {', '.join(missing)}"
                                                                        if missing else ""))
