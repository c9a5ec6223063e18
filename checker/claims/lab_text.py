"""Statements of the lab's text, checked as written against this engine's own output.

The lab was written for Docker of 2019 (legacy builder, overlay2). Newer engines change what the
commands print without changing the facts the claims check. These checks say, for each sentence of
the lab, whether it holds as written here; `observed` is what is true instead. They never change the
exit code: they feed the report's "this engine vs the lab's text" section.
"""

from __future__ import annotations

from checker.checks import check
from checker.claims.tables import as_docker_names
from checker.facts import Facts, Image, MissingFact
from checker.parsers import parse_ps_size
from checker.records import StepFact, Verdict

LAB_CONTAINERS = "{{ resources.containers }}"


def _name(image: Image) -> str:
    return image.tags[0] if image.tags else image.id[:19]


def _lab_rows(names: list[str], table: list[dict]) -> list[dict]:
    names = set([names] if isinstance(names, str) else names)
    rows = [row for row in table if row.get("NAMES") in names]
    if not rows:
        raise MissingFact("`docker ps -s` shows none of the lab's containers (they are not running)")
    return rows


@check("pull_complete_lines", refs={"pull": "pull", "image": "base_image"})
def pull_complete_lines(facts: Facts, pull: StepFact, image: Image | None) -> Verdict:
    out = facts.output(pull)
    n = len(image.layers) if image else 0
    finals = sorted({out.layers[lid] for lid in out.order})
    complete = out.with_status("Pull complete", "Already exists")
    instead = f"its {len(out.order)} layer line(s) end with {', '.join(f'`{f}`' for f in finals) or 'nothing'}"
    if facts.engine and facts.engine.containerd_store:
        instead += " (the containerd image store downloads first and unpacks afterwards)"
    elif facts.podman:
        instead += " (Podman prints `Copying blob sha256:…` per layer instead)"
    return Verdict(n > 0 and len(complete) == n, "", instead)


@check("legacy_build_output", refs={"base_build": "build-base", "image_build": "build-image"})
def legacy_build_output(facts: Facts, base_build: StepFact, image_build: StepFact) -> Verdict:
    base, image = facts.output(base_build), facts.output(image_build)
    ok = {base.builder, image.builder} == {"legacy"} and bool(base.image_id) and bool(image.image_id)
    if ok:
        return Verdict(True, "", "Step n/m lines and Successfully built")
    if facts.podman:
        return Verdict(False, "", "Podman builds with Buildah: it prints `STEP 1/2: …` lines and `COMMIT …`, "
                                  "no `Step 1/2 :` and no `Successfully built <id>`")
    return Verdict(False, "", "BuildKit builds: it prints `#n [k/m] …` steps on stderr and `naming to …`, "
                              "no `Step 1/2` and no `Successfully built <id>`")


@check("history_ids_repeat", refs={"base_table": "history-base", "image_table": "history-image"},
       options={"base": None})
def history_ids_repeat(facts: Facts, base_table: StepFact, image_table: StepFact, base: str) -> Verdict:
    base_ids = [row.get("IMAGE", "") for row in base_table.parsed or []]
    image_ids = [row.get("IMAGE", "") for row in image_table.parsed or []][1:]
    ok = bool(base_ids) and image_ids[-len(base_ids):] == base_ids
    missing = sum(1 for a, b in zip(reversed(image_ids), reversed(base_ids)) if a != b and a == "<missing>")
    instead = (f"{missing} row(s) inherited from {base} show `<missing>` where {base} shows an ID "
               "(BuildKit and the containerd store keep no intermediate images)")
    return Verdict(ok, "", instead if not ok else "same IDs")


@check("layers_listed_in_driver_dir", refs={"listing": "driver-dir", "image": "base_image"})
def layers_listed_in_driver_dir(facts: Facts, listing: StepFact, image: Image | None) -> Verdict:
    listed = set(listing.parsed or [])
    dirs = image.layer_dirs() if image else []
    ok = bool(dirs) and set(dirs) <= listed
    if ok:
        return Verdict(True, "", "one directory per layer")
    if facts.engine and facts.engine.containerd_store:
        return Verdict(False, "", "the containerd image store keeps layers as numbered snapshot directories of "
                                  "its overlayfs snapshotter (…/io.containerd.snapshotter.v1.overlayfs/snapshots); "
                                  f"/var/lib/docker/overlay2 holds {len(listed)} entr{'y' if len(listed) == 1 else 'ies'}")
    if facts.podman:
        return Verdict(False, "", f"Podman keeps layers in its own store, {facts.engine.docker_root_dir}/overlay/"
                                  "<layer>/diff; there is no /var/lib/docker/overlay2")
    driver = facts.engine.storage_driver if facts.engine else "another driver"
    return Verdict(False, "", f"the engine stores layers with {driver}, not overlay2")


@check("ps_size_zero", refs={"ps": "ps-size"}, options={"names": LAB_CONTAINERS})
def ps_size_zero(facts: Facts, ps: StepFact, names: list[str]) -> Verdict:
    cells = [row.get("SIZE", "") for row in _lab_rows(names, ps.parsed or [])]
    sizes = [parse_ps_size(cell) for cell in cells if cell]
    ok = bool(sizes) and all(s.writable == 0 for s in sizes)
    shown = sorted({cell.split("(")[0].strip() for cell in cells})
    instead = f"each container's own size shows {', '.join(shown)}"
    if facts.engine and facts.engine.containerd_store:
        instead += " (the containerd store counts the writable snapshot's metadata)"
    return Verdict(ok, "", instead)


@check("virtual_equals_image_ls", refs={"ps": "ps-size", "images": "image-ls"},
       options={"image": None, "names": LAB_CONTAINERS})
def virtual_equals_image_ls(facts: Facts, ps: StepFact, images: StepFact, image: str, names: list[str]) -> Verdict:
    # (Podman names images in full, localhost/my-image: read as Docker shows them.)
    image_rows = [r for r in as_docker_names(images.parsed or [], facts)
                  if f"{r.get('REPOSITORY')}:{r.get('TAG')}" == image]
    shown = image_rows[0].get("SIZE", "?") if image_rows else "?"
    virtuals = sorted({row.get("SIZE", "").partition("virtual")[2].strip(" )")
                       for row in _lab_rows(names, ps.parsed or [])})
    ok = bool(virtuals) and virtuals == [shown]
    instead = f"virtual {', '.join(virtuals) or '?'} while `docker image ls` shows {shown}"
    if facts.engine and facts.engine.containerd_store:
        instead += " (image ls adds the compressed blobs to the unpacked size)"
    return Verdict(ok, "", instead)


@check("size_fields_equal", refs={"base": "base_built", "image": "my_image"})
def size_fields_equal(facts: Facts, base: Image | None, image: Image | None) -> Verdict:
    if base is None or image is None:
        return Verdict(False, "", "the images were not built")
    ok = base.size == image.size
    instead = (f"`docker image inspect` Size: {_name(image)} {image.size:,} B, {_name(base)} {base.size:,} B"
               + (" (the containerd store counts the compressed blobs, and each image's own config and manifest)"
                  if facts.engine and facts.engine.containerd_store else ""))
    return Verdict(ok, "", instead)
