"""Checks about image layers, containers' writable layers and disk use (lab 07, FS layering)."""

from __future__ import annotations

from checker.checks import check, size_option
from checker.facts import Container, ContainerEvents, Facts, HistoryRow, Image, LayerStore, MissingFact, chain_ids
from checker.parsers import DuEntry
from checker.records import StepFact, Verdict, docker_root
from checker.units import human

LAB_CONTAINERS = "{{ resources.containers }}"  # the containers a check looks at, unless `with: {names: …}`


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def _name(image: Image) -> str:
    return image.tags[0] if image.tags else _short(image.id)


def _need_image(image: Image | None, what: str) -> Image:
    if image is None:
        raise MissingFact(f"the {what} image does not exist on the engine")
    return image


def _row(row: HistoryRow) -> str:
    text = row.created_by.replace("/bin/sh -c #(nop) ", "").strip()
    return (text[:45] + "…" if len(text) > 46 else text) + f" ({human(row.size)})"


def _lab_containers(names: list[str] | str, containers: list[Container]) -> tuple[list[str], dict[str, Container]]:
    names = [names] if isinstance(names, str) else list(names)
    return names, {c.name: c for c in containers}


# ------------------------------------------------------------------------------------------------ images


def _containerd(facts: Facts) -> bool:
    return bool(facts.engine and facts.engine.containerd_store)


@check("layers_pulled_separately", refs={"pull": "pull", "image": "base_image"})
def layers_pulled_separately(facts: Facts, pull: StepFact, image: Image | None) -> Verdict:
    image = _need_image(image, "pulled")
    n = len(image.layers)
    out = pull.parsed if pull.status != "skipped" else None
    if out is None or not out.order:
        # Observe mode (the pull's output is gone), or nothing to download: the image was on the engine
        # already, or its layers were (the containerd store keeps them after the image goes, e.g. for the
        # build cache of builds done by hand), so the pull printed no layer lines. What a pull leaves is an
        # image from a registry, stored as its layers: judged from that.
        if out is None:
            why = "observe mode did not pull"
        elif out.status and "up to date" in out.status.lower():
            why = f"it was on the engine already, so the pull said: {out.status}"
        else:
            why = "the engine had its layers already, so the pull printed no layer lines" + \
                (f" (it said: {out.status})" if out.status else "")
        expected = f"{_name(image)} came from a registry and is stored as its layers, each on its own"
        observed = (f"{n} layer(s); from a registry: {'yes (' + image.digests[0] + ')' if image.digests else 'no'}"
                    f" (judged from the stored image: {why})")
        return Verdict(n > 0 and bool(image.digests), expected, observed,
                       f"pull it with `docker pull {_name(image)}`",
                       {"layers": list(image.layers), "judged_from": "stored image"})
    # The classic store ends each layer's line with "Pull complete" (or "Already exists"); the containerd
    # image store unpacks later and ends each with "Download complete".
    done = ("Pull complete", "Already exists") + (("Download complete",) if _containerd(facts) else ())
    reported = out.with_status(*done)
    expected = f"one line per layer: {n} layer(s) of {_name(image)}, each reported on its own ({' / '.join(done)})"
    observed = f"{len(reported)} layer(s) reported separately" + (f" ({', '.join(reported)})" if reported else "")
    return Verdict(len(reported) == n and n > 0, expected, observed, None,
                   {"layers": list(image.layers), "reported": reported})


@check("layers_stored_in_driver_dir", refs={"listing": "driver-dir", "image": "base_image", "store": "layer_store"})
def layers_stored_in_driver_dir(facts: Facts, listing: StepFact, image: Image | None,
                                store: LayerStore | None) -> Verdict:
    image = _need_image(image, "pulled")
    n = len(image.layers)
    if _containerd(facts):
        # The containerd image store: each layer is a committed snapshot (named by its chain ID) of the
        # overlayfs snapshotter, and each snapshot is one numbered directory.
        if store is None:
            raise MissingFact("the containerd snapshots were not listed")
        chains = chain_ids(image.layers)
        committed = [c for c in chains if store.snapshots.get(c) == "Committed"]
        expected = (f"{n} committed snapshots for the {n} layer(s) of {_name(image)}, each its own directory "
                    f"under {store.path}")
        observed = (f"{len(committed)} of {n} layers are committed snapshots; {len(store.directories)} snapshot "
                    f"directories for {len(store.snapshots)} snapshots")
        ok = n > 0 and len(committed) == n and len(store.directories) == len(store.snapshots)
        return Verdict(ok, expected, observed, None,
                       {"chain_ids": chains, "snapshots": len(store.snapshots), "dirs": list(store.directories)})
    engine = facts.engine
    root = docker_root(engine)
    expected = f"{n} directories in {root}/overlay2, one per layer of {_name(image)}"
    if image.graph_driver != "overlay2":
        return Verdict(False, expected, f"the engine stores images with {image.graph_driver or 'an unknown driver'}",
                       f"the lab assumes the overlay2 storage driver; this engine uses {image.graph_driver}: "
                       "re-provision the VM (vagrant provision) so Docker uses overlay2",
                       {"driver": image.graph_driver})
    dirs = image.layer_dirs()
    listed = set(listing.parsed or [])
    present = [d for d in dirs if d in listed]
    observed = (f"{len(set(dirs))} layer directories for {n} layer(s); {len(present)} of them in the listing "
                f"of {root}/overlay2 ({len(listed)} entries)")
    if listing.status != "passed":
        observed += f"; listing it failed: {listing.error or 'see the step'}"
    ok = n > 0 and len(dirs) == n and len(set(dirs)) == n and len(present) == n
    return Verdict(ok, expected, observed, None, {"layer_dirs": dirs, "listed": sorted(listed)})


def _same_row(a: HistoryRow, b: HistoryRow) -> bool:
    """The same history row; an ID shown as <missing> (BuildKit, containerd store) is not compared."""
    ids_match = a.id == b.id or a.missing_id or b.missing_id
    return ids_match and (a.created_by, a.size, a.created_at, a.comment) == (b.created_by, b.size, b.created_at,
                                                                             b.comment)


def _same_rows(rows: list[HistoryRow], others: list[HistoryRow]) -> bool:
    return len(rows) == len(others) and all(_same_row(a, b) for a, b in zip(rows, others))


@check("base_layers_shared", refs={"base": "base_built", "image": "my_image", "base_history": "base_history",
                                   "image_history": "image_history"})
def base_layers_shared(facts: Facts, base: Image | None, image: Image | None, base_history: list[HistoryRow],
                       image_history: list[HistoryRow]) -> Verdict:
    base, image = _need_image(base, "base"), _need_image(image, "lab's")
    k = len(base.layers)
    shared = sum(1 for a, b in zip(base.layers, image.layers) if a == b)
    in_order = image.layers[:k] == base.layers
    added = len(image_history) - len(base_history)
    inherited = image_history[added:] if added >= 1 else []
    same_rows = _same_rows(inherited, base_history)
    expected = (f"all {k} layer(s) of {_name(base)} are the first {k} of {_name(image)} (same digests, same order); "
                f"its {len(base_history)} history rows reappear unchanged below {_name(image)}'s own")
    observed = f"{shared} of {k} layer(s) shared{' in order' if in_order else ', not as a prefix'}; "
    if same_rows:
        ids = "same IDs" if inherited == base_history else "IDs shown as <missing> not compared"
        observed += f"{len(base_history)} of {len(base_history)} history rows identical ({ids})"
    else:
        same = sum(1 for a, b in zip(reversed(image_history), reversed(base_history)) if _same_row(a, b))
        observed += f"only {same} of {len(base_history)} history rows of {_name(base)} found unchanged"
    hint = None if in_order else f"build {_name(image)} FROM {_name(base)}, so it reuses its layers"
    return Verdict(k > 0 and in_order and same_rows, expected, observed, hint,
                   {"base_layers": list(base.layers), "image_layers": list(image.layers)})


@check("cmd_layer_empty", refs={"base": "base_built", "image": "my_image", "base_history": "base_history",
                                "image_history": "image_history"})
def cmd_layer_empty(facts: Facts, base: Image | None, image: Image | None, base_history: list[HistoryRow],
                    image_history: list[HistoryRow]) -> Verdict:
    base, image = _need_image(base, "base"), _need_image(image, "lab's")
    new_rows = image_history[: max(0, len(image_history) - len(base_history))]
    on_base = image.layers[: len(base.layers)] == base.layers
    new_layers = [layer for layer in image.layers if layer not in base.layers]
    expected = f"{_name(image)} adds one history row, CMD, of 0B, and no filesystem layer to {_name(base)}"
    observed = (f"{len(new_rows)} new row(s): {'; '.join(_row(r) for r in new_rows) or 'none'}; "
                f"{len(new_layers)} layer(s) not in {_name(base)}")
    if not on_base:
        observed += f" ({_name(image)} is not built on {_name(base)})"
    ok = (len(new_rows) == 1 and "CMD" in new_rows[0].created_by and new_rows[0].size == 0
          and image.layers == base.layers)
    hint = None
    if new_layers and on_base:
        hint = f"{_name(image)}'s Dockerfile changes files (RUN, COPY or ADD): keep only FROM and CMD in it"
    elif not on_base:
        hint = f"build {_name(image)} FROM {_name(base)}"
    return Verdict(ok, expected, observed, hint, {"new_rows": [r.created_by for r in new_rows]})


def content_size(history: list[HistoryRow]) -> int:
    """What an image's layers hold, the sum of its history rows: equal to Size on the classic store; on the
    containerd store Size counts the compressed blobs instead, and the rows the unpacked snapshots."""
    return sum(row.size for row in history)


@check("image_sizes_equal", refs={"base": "base_built", "image": "my_image", "pulled": "base_image",
                                  "base_history": "base_history", "image_history": "image_history",
                                  "pulled_history": "pulled_history"},
       options={"copied_slack": "64KiB"})
def image_sizes_equal(facts: Facts, base: Image | None, image: Image | None, pulled: Image | None,
                      base_history: list[HistoryRow], image_history: list[HistoryRow],
                      pulled_history: list[HistoryRow], copied_slack: str | int) -> Verdict:
    base, image = _need_image(base, "base"), _need_image(image, "lab's")
    pulled = _need_image(pulled, "pulled")
    files = facts.files_total
    slack = size_option(copied_slack)
    sizes = {"image": content_size(image_history), "base": content_size(base_history),
             "pulled": content_size(pulled_history)}
    added = sizes["base"] - sizes["pulled"]
    what = "unpacked layers (history)" if _containerd(facts) else "bytes"
    expected = (f"{_name(image)} = {_name(base)} in {what}; {_name(base)} − {_name(pulled)} = the copied files "
                f"({files} B, up to {human(slack)} more for file-system blocks)")
    observed = (f"{_name(image)} {sizes['image']:,} B, {_name(base)} {sizes['base']:,} B, {_name(pulled)} "
                f"{sizes['pulled']:,} B; {_name(base)} adds {added:,} B")
    ok = sizes["image"] == sizes["base"] and files <= added <= files + slack
    if not _containerd(facts) and not facts.podman:
        # The classic store's Size is the same sum (Podman's adds the image's config and manifest); say so
        # if it is not.
        ok = ok and (image.size, base.size, pulled.size) == (sizes["image"], sizes["base"], sizes["pulled"])
    hint = None
    if sizes["image"] != sizes["base"]:
        hint = f"{_name(image)} should add no files to {_name(base)}: only a CMD"
    return Verdict(ok, expected, observed, hint,
                   {"sizes": sizes, "size_fields": {"image": image.size, "base": base.size, "pulled": pulled.size},
                    "files": files})


# ------------------------------------------------------------------------------------------------ containers


EVENTS = "container_events"  # the fact with the engine's event log of the lab's containers, if gathered
GONE_HINT = ("run `check-lab 07 --observe` before you stop the containers (`--rm` removes them as they stop), "
             "or let `check-lab 07 --watch` follow you while you do the lab")


def _events(facts: Facts, name: str, image: Image | None = None) -> ContainerEvents | None:
    """The event log of the lab's containers; in observe mode only what happened since `image` (the one the
    containers run) was made: older events are of earlier containers of the same names."""
    value = facts.peek(name)
    if not isinstance(value, ContainerEvents):
        return None
    if facts.observe and image is not None:
        from checker.resources import epoch

        made = epoch(image.created)
        if made is not None:
            value = value.since_made(made - 1)
    return value


def _from_image(image: Image, ref: str) -> bool:
    return ref in image.tags or ref == image.id or f"{ref}:latest" in image.tags or image.id.endswith(ref)


@check("containers_running", refs={"containers": "running", "image": "my_image"},
       options={"names": LAB_CONTAINERS, "events": EVENTS})
def containers_running(facts: Facts, containers: list[Container], image: Image | None, names: list[str],
                       events: str) -> Verdict:
    image = _need_image(image, "lab's")
    names, by_name = _lab_containers(names, containers)
    log = _events(facts, events, image)
    # Observe mode looks after the lab ended, and the lab ends by stopping them: they must have run. A container
    # already removed (`--rm`) is judged from the engine's event log.
    done = (lambda c: c.running or c.ever_started) if facts.observe else (lambda c: c.running)
    ran, missing, stopped, other, notes = [], [], [], [], []
    for n in names:
        c = by_name.get(n)
        if c is not None:
            (ran if done(c) else stopped).append(n)
            if c.image_id != image.id:
                other.append(n)
            if not done(c):
                notes.append(f"{n} ({c.status}, exit {c.exit_code})")
            continue
        started = log.started(n) if log else None
        if started is None:
            missing.append(n)
            continue
        died = log.died(n)
        if facts.observe or (died is None or died.time > started.time + 2):
            ran.append(n)  # it ran (and, in observe mode, may have been stopped and removed since)
        else:
            stopped.append(n)
            notes.append(f"{n} (ended at once, exit {died.exit_code}{', removed by --rm' if log.destroyed(n) else ''})")
        if log.image_of(n) and not _from_image(image, log.image_of(n)):
            other.append(n)
    verb = "started (running or stopped since)" if facts.observe else "running"
    expected = f"{len(names)} containers ({', '.join(names)}) {verb} from {_name(image)}"
    observed = f"{len(ran)} of {len(names)} {verb.split(' ')[0]}"
    if facts.observe and any(n not in by_name for n in ran):
        observed += " (removed since: judged from the engine's event log)"
    if missing:
        observed += f"; missing: {', '.join(missing)}"
    if notes:
        observed += "; not running: " + ", ".join(notes)
    if other:
        observed += f"; from another image: {', '.join(other)}"
    hint = None
    if stopped:
        hint = "a container with `bash` needs -it (docker run -dit) or it exits at once; see `docker logs NAME`"
    elif other:
        hint = f"start every container from {_name(image)}"
    return Verdict(not (missing or stopped or other) and bool(names), expected, observed, hint)


def _present(facts: Facts, names: list[str], by_name: dict[str, Container], what: str) -> dict[str, Container]:
    """The lab's containers whose sizes can be measured: running ones (observe mode: any still there).
    None of them: not judged, and the student is told why (the lab's stop removed them, with `--rm`; or
    they do not keep running, which five-containers-running says)."""
    there = {n: c for n, c in by_name.items() if n in names and (facts.observe or c.running)}
    if there:
        return there
    gone = [n for n in names if n not in by_name]
    if facts.observe:
        raise MissingFact(f"{what} of removed containers cannot be measured: {', '.join(gone or names)} no longer exist",
                          what_to_do=GONE_HINT)
    raise MissingFact(f"{what} cannot be measured: none of {', '.join(names)} runs",
                      what_to_do="see five-containers-running: the containers must keep running")


def _measured(names: list[str], by_name: dict[str, Container], image: Image) -> tuple[list[str], list[str]]:
    """The lab's containers to measure (there, from the lab's image), and a note on the others, whose
    absence or other image is the business of the claim that the containers run."""
    measured = [n for n in names if n in by_name and by_name[n].image_id == image.id]
    others = [f"{n}: {'not running' if n not in by_name else 'from another image'}" for n in names if n not in measured]
    return measured, others


@check("writable_layer_small", refs={"containers": "running", "image": "my_image", "image_history": "image_history"},
       options={"max_writable": "64KiB", "init_allowance": "64KiB", "names": LAB_CONTAINERS})
def writable_layer_small(facts: Facts, containers: list[Container], image: Image | None,
                         image_history: list[HistoryRow], max_writable: str | int, init_allowance: str | int,
                         names: list[str]) -> Verdict:
    image = _need_image(image, "lab's")
    limit = size_option(max_writable)
    names, by_name = _lab_containers(names, containers)
    by_name = _present(facts, names, by_name, "the writable layers")
    if _containerd(facts):
        # containerd store: the virtual size is the unpacked snapshots (in file-system blocks) plus the
        # container's own writable and init snapshots.
        image_size, allowance = content_size(image_history), size_option(init_allowance)
    else:
        image_size, allowance = image.size, 0
    rows, bad = [], []
    measured, others = _measured(names, by_name, image)
    for name in measured:
        c = by_name[name]
        if c.size_rw is None or c.size_root_fs is None:
            bad.append(f"{name}: no size")
            continue
        virtual_ok = 0 <= c.size_root_fs - c.size_rw - image_size <= allowance
        if c.size_rw > limit or not virtual_ok:
            bad.append(f"{name}: writable {human(c.size_rw)}, virtual {human(c.size_root_fs)}")
        rows.append({"name": name, "size_rw": c.size_rw, "size_root_fs": c.size_root_fs})
    expected = (f"each container's writable layer ≤ {human(limit)} (near 0B) and its virtual size = "
                f"{_name(image)}'s size {image_size:,} B" + (f" (+ ≤ {human(allowance)} of its own snapshots)"
                                                              if allowance else ""))
    sizes = sorted({r["size_rw"] for r in rows})
    virtuals = sorted({r["size_root_fs"] for r in rows})
    observed = (f"writable {', '.join(human(s) for s in sizes) or '?'}; "
                f"virtual {', '.join(f'{v:,} B' for v in virtuals) or '?'}")
    if bad:
        observed += "; " + "; ".join(bad)
    if others:
        observed += f" (not measured: {', '.join(others)}; see five-containers-running)"
    hint = None
    if bad:
        hint = ("a container's writable layer holds only what it changed: something in these containers writes "
                "files (check the image's ENTRYPOINT/CMD and `docker diff NAME`)")
    return Verdict(not bad and bool(measured), expected, observed, hint, {"containers": rows})


def _dir_sizes(names: list[str], du: list[DuEntry], containers: list[Container]) -> dict[str, float | None]:
    by_id = {entry.path.rstrip("/").rsplit("/", 1)[-1]: entry.size for entry in du}
    names, by_name = _lab_containers(names, containers)
    return {name: by_id.get(by_name[name].id) if name in by_name else None for name in names}


@check("container_dirs_small", refs={"du": "container-dirs-du", "containers": "running", "image": "my_image"},
       options={"max_dir": "1MiB", "names": LAB_CONTAINERS})
def container_dirs_small(facts: Facts, du: StepFact, containers: list[Container], image: Image | None,
                         max_dir: str | int, names: list[str]) -> Verdict:
    image = _need_image(image, "lab's")
    limit = min(size_option(max_dir), image.size / 100)
    names, by_name = _lab_containers(names, containers)
    by_name = _present(facts, names, by_name, "the directories")
    absent = [n for n in names if n not in by_name]  # the business of five-containers-running
    sizes = _dir_sizes([n for n in names if n in by_name], du.parsed or [], list(by_name.values()))
    root = docker_root(facts.engine)
    missing = [n for n, s in sizes.items() if s is None]
    big = [f"{n} {human(s)}" for n, s in sizes.items() if s is not None and s > limit]
    expected = f"each {root}/containers/<id> ≤ {human(limit)} (tens of kB), far below the image ({human(image.size)})"
    found = sorted({s for s in sizes.values() if s is not None})
    observed = f"{', '.join(human(s) for s in found) or 'none found'} each"
    if missing:
        observed += f"; no directory listed for {', '.join(missing)}"
    if big:
        observed += f"; too big: {', '.join(big)}"
    if absent:
        observed += f" (not there: {', '.join(absent)}; see five-containers-running)"
    hint = None
    if big:
        hint = "a container directory holds the container's log and config: a container printing a lot grows it"
    return Verdict(not missing and not big and bool(sizes), expected, observed, hint,
                   {"dirs": {n: s for n, s in sizes.items()}})


@check("disk_formula", refs={"containers": "running", "du": "container-dirs-du", "image": "my_image"},
       options={"layer_overhead": "256KiB", "before": "disk_before", "after": "disk_after",
                "own_disk": "container_disk", "names": LAB_CONTAINERS})
def disk_formula(facts: Facts, containers: list[Container], du: StepFact, image: Image | None,
                 layer_overhead: str | int, before: str, after: str, own_disk: str, names: list[str]) -> Verdict:
    image = _need_image(image, "lab's")
    overhead = size_option(layer_overhead)
    names, by_name = _lab_containers(names, containers)
    by_name = _present(facts, names, by_name, "the disk use")
    names = [x for x in names if x in by_name]  # the absent ones are the business of five-containers-running
    n = len(names)
    writable = sum((by_name[x].size_rw or 0) for x in names if x in by_name)
    dirs = sum(s for s in _dir_sizes(names, du.parsed or [], list(by_name.values())).values() if s)
    allowed = writable + dirs + n * overhead
    root = docker_root(facts.engine)
    if facts.observe:
        # No "before" to compare with: add up what each container has on disk of its own instead.
        growth = facts.get(own_disk)
        if growth is None:
            raise MissingFact("the containerd image store keeps the containers' snapshots outside the engine's "
                              "folders, so observe mode cannot add up what each container holds on disk",
                              what_to_do="run `check-lab 07`: it measures the disk before and after the containers")
        measured = (f"the {n} containers' own layers and directories hold {human(growth)} ({growth:,} B) "
                    "(du -sx; observe mode)")
        numbers = {"own": growth}
    else:
        disk_before, disk_after = facts.get(before), facts.get(after)
        growth = disk_after - disk_before
        measured = (f"{root} grew by {human(growth)} ({growth:,} B) with {n} containers: "
                    f"{disk_before:,} B → {disk_after:,} B (du -sx)")
        numbers = {"before": disk_before, "after": disk_after}
    expected = (f"the containers add at most Σ writable ({human(writable)}) + Σ container dirs ({human(dirs)}) "
                f"+ layer metadata (≤ {human(overhead)} each) = {human(allowed)}; "
                f"{n} copies of the image would be {human(n * image.size)}")
    hint = None
    if growth > allowed:
        hint = ("each container costs far more than its writable layer: the engine copies the image per container "
                "(vfs storage driver?) or the containers write data elsewhere (volumes)")
    return Verdict(growth <= allowed and n > 0, expected, measured, hint,
                   {**numbers, "growth": growth, "writable": writable, "dirs": dirs, "allowed": allowed})


@check("containers_stopped", refs={"containers": "stopped"},
       options={"names": LAB_CONTAINERS, "events": EVENTS, "image": "my_image"})
def containers_stopped(facts: Facts, containers: list[Container], names: list[str], events: str,
                       image: str) -> Verdict:
    names, by_name = _lab_containers(names, containers)
    image_fact = facts.peek(image)
    if facts.observe and not isinstance(image_fact, Image) and not by_name:
        raise MissingFact("the lab's image and containers are not there (yet)")
    log = _events(facts, events, image_fact if isinstance(image_fact, Image) else None)
    running = [n for n in names if n in by_name and by_name[n].running]
    # Stopped: started and ended. A container caught between `docker run`'s create and its start has not.
    stopped = [n for n in names if n in by_name and not by_name[n].running and by_name[n].ever_started]
    waiting = [n for n in names if n in by_name and not by_name[n].running and not by_name[n].ever_started]
    # Gone: stopped and removed (`docker run --rm`) if the event log saw it die; else it never ran here.
    removed = [n for n in names if n not in by_name and log is not None and log.died(n) is not None]
    never = [n for n in names if n not in by_name and n not in removed]
    expected = f"none of the {len(names)} containers runs after `docker stop`"
    statuses = sorted({f"{c.status}, exit {c.exit_code}" for n, c in by_name.items() if n in stopped})
    observed = f"{len(stopped) + len(removed)} of {len(names)} stopped"
    if statuses:
        observed += f" ({'; '.join(statuses)})"
    if removed:
        codes = sorted({str(log.died(n).exit_code) for n in removed})
        observed += f"; {len(removed)} stopped (exit {', '.join(codes)}) and removed by --rm (the engine's event log)"
    if running:
        observed += f"; still running: {', '.join(running)}"
    if waiting:
        observed += f"; created but never started: {', '.join(waiting)}"
    if never:
        if log is not None and log.truncated and facts.observe:
            raise MissingFact(f"{', '.join(never)} no longer exist and the engine's event log (its last 256 events) "
                              "no longer mentions them", what_to_do=GONE_HINT)
        observed += f"; never ran here: {', '.join(never)} (see five-containers-running)"
    hint = None
    if running:
        hint = "stop them by name: docker stop " + " ".join(names)
        if facts.engine is not None and facts.engine.rootless:
            # The course's `sudo su` before its stop: under Docker root reaches the same daemon; rootless Podman
            # gives root a store of its own, where the lab's containers are not.
            hint += (", as yourself, not in root's shell: rootless Podman gives root (`sudo su`) a store of its own, "
                     "without your containers; type `exit` first")
    return Verdict(not running and not waiting and bool(stopped or removed), expected, observed, hint)
