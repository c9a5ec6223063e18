"""Labs as data: finding a lab folder, loading and validating its lab.yaml, variables and templates.

A lab folder holds `lab.yaml`, the files the lab's commands use, and a README. The YAML names
variables (overridable with `--set KEY=VALUE`), the files to upload, the resources the lab creates,
the steps (the lab's own commands) and the claims (checks registered in checker.claims).

Templates: `{{ name }}` in a step's `run` becomes the value quoted for the shell (a list becomes
several quoted words); elsewhere (probe arguments, resources) the plain value. `{A..B}` in a resource
name expands to a numbered range, as in bash.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from checker.errors import LabSpecError, UsageError
from checker.records import ENGINE_FEATURES, LabInfo
from checker.resources import KINDS

SCHEMA = 1
LAB_FILE = "lab.yaml"
ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
TEMPLATE_RE = re.compile(r"\{\{\s+([A-Za-z_][A-Za-z0-9_.]*)\s+\}\}")  # `{{ name }}`, spaced: Docker's `{{.X}}`, `{{end}}` pass
RANGE_RE = re.compile(r"\{(\d+)\.\.(\d+)\}")
# Values the runner knows only once it runs (probe arguments may use them): when the run started, by the
# target's clock (empty in observe mode: everything the engine still holds); a step's own timeout in
# seconds, scaled by --timeout-factor (a step that waits for something gives up a little before it).
RUNTIME = {"run.started": "", "step.timeout": ""}
# `{{ student }}`: the student's ID given with --student (empty without), for a step's `student:` form and the
# claims that judge the student's mark.
DEFAULT_TIMEOUT = 120.0


def runtime_defaults(lab) -> dict:
    """The runtime names a lab may use, before the run has learnt them (captured values are empty)."""
    out = dict(RUNTIME)
    for step in lab.steps:
        for name, _pattern, _observe in step.captures:
            out[f"captured.{name}"] = ""
    return out


# ------------------------------------------------------------------------------------------------ model


@dataclass(frozen=True)
class Variable:
    name: str
    default: Any
    type: str = "str"  # str | int
    description: str = ""
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    required: bool = False  # no default: the user gives it (`--set NAME=...`)

    def convert(self, raw: Any, origin: str) -> Any:
        if self.type == "int":
            try:
                value = int(str(raw).strip())
            except ValueError:
                raise UsageError(f"{origin}: {self.name} must be a whole number, not {raw!r}") from None
            if self.minimum is not None and value < self.minimum:
                raise UsageError(f"{origin}: {self.name} must be at least {self.minimum}, not {value}")
            if self.maximum is not None and value > self.maximum:
                raise UsageError(f"{origin}: {self.name} must be at most {self.maximum}, not {value}")
            return value
        value = str(raw)
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise UsageError(f"{origin}: {self.name}={value!r} is not allowed (it must match {self.pattern})")
        if "\n" in value or "\x00" in value:
            raise UsageError(f"{origin}: {self.name} must be one line")
        return value


@dataclass(frozen=True)
class Probe:
    """A fact to gather after a step: `probe` names a collector in checker.probes, `as` the fact."""

    kind: str
    name: str
    args: dict
    observe: bool | str = True  # gathered in observe mode too (False: not there; "only": only there)


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    run: str
    sudo: bool = False
    timeout: float = DEFAULT_TIMEOUT
    parse: str | None = None
    may_fail: bool = False
    after: tuple[Probe, ...] = ()
    observe: bool = False  # also run in observe mode: the command only looks (ls, docker ps, history, ...)
    course: str | None = None  # the course's command as printed, where `run` must differ from it
    departs: str | None = None  # what differs from the course's command, and why
    addition: str | None = None  # why the checker adds a step the course does not have
    # Values later steps use (`{{ captured.NAME }}`): (NAME, a regular expression over the step's stdout whose
    # first group, or whole match, is the value, or None: a value only observe mode finds; the command that
    # finds it in observe mode, or None).
    captures: tuple[tuple[str, str | None, str | None], ...] = ()
    # Observe mode's form of the step (`observe: COMMAND`): a command that only looks and finds the step's
    # evidence in what the student left (the log of their container, the files in their clone); it runs
    # instead of `run` there, and claims read its output as the step's.
    observe_run: str | None = None
    on: str | None = None  # the machine it runs on, for a lab of several machines (default: the first)
    # With --student ID: the step's form that leaves the student's mark on what it makes (`student: {run:
    # COMMAND, why: TEXT}`), e.g. a label with the ID on the image it builds; an addition of check-lab's.
    student_run: str | None = None
    student_why: str | None = None
    # What the engine must be able to do for the step to run (records.ENGINE_FEATURES): on an engine that
    # lacks it the step is not run (`skipped`, with the reason), and the claims on it say `needs:` too.
    needs: tuple[str, ...] = ()

    @property
    def looks(self) -> bool:
        """Observe mode runs it (as it is, or in its observe form)."""
        return self.observe or self.observe_run is not None


@dataclass(frozen=True)
class LabFile:
    """A file of the lab, uploaded to the run's work folder: `source` (in the lab folder) as `dest`, with
    `replace` (old text -> new, rendered with the lab's variables) applied to the uploaded copy only."""

    source: str
    dest: str
    replace: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ClaimSpec:
    id: str
    title: str
    check: str
    args: dict
    hint: str
    points: float = 1.0
    addition: str | None = None  # a claim beyond the course's text, and why
    student: bool = False  # judged only with --student (the student's mark on their work)
    needs: tuple[str, ...] = ()  # what the engine must be able to do (records.ENGINE_FEATURES), else not applicable


@dataclass(frozen=True)
class Lab:
    id: str
    title: str
    folder: Path
    description: str
    variables: dict[str, Variable]
    files: tuple[LabFile, ...]
    resources: dict[str, tuple[str, ...]]
    steps: tuple[Step, ...]
    claims: tuple[ClaimSpec, ...]
    statements: tuple[ClaimSpec, ...] = ()  # sentences of the lab's text (title), checked as written
    needs_docker: bool = True  # False: a Docker engine the user cannot reach is a finding, not a target error
    course: dict = field(default_factory=dict)  # where the lab comes from: repository, commit, folder, files
    machines: tuple[str, ...] = ("docker-vm",)  # the course's machines it runs on
    needs: tuple[str, ...] = ()  # what it needs beyond its own steps, in words (check-lab list)

    @property
    def name(self) -> str:
        return f"{self.id} – {self.title}"

    @property
    def on_one_machine(self) -> bool:
        """Runs on the course's single docker-vm (labs 11 and 12 need the swarm machines)."""
        return set(self.machines) <= {"docker-vm"}

    def values(self, overrides: dict[str, str] | None = None) -> dict[str, Any]:
        """The variables' values: defaults, then `--set` overrides (checked and converted)."""
        values = {name: var.default for name, var in self.variables.items()}
        for key, raw in (overrides or {}).items():
            if key not in self.variables:
                known = ", ".join(sorted(self.variables)) or "none"
                raise UsageError(f"--set {key}: lab {self.id} has no variable {key!r} (it has: {known})")
            values[key] = self.variables[key].convert(raw, f"--set {key}")
        missing = [var for name, var in self.variables.items() if var.required and name not in (overrides or {})]
        if missing:
            raise UsageError(f"lab {self.id} needs " + ", ".join(
                f"--set {var.name}=…" + (f" ({var.description})" if var.description else "") for var in missing))
        return values

    def preview_values(self) -> dict[str, Any]:
        """The defaults, with `<NAME>` for what the user must give: to show the lab, not to run it."""
        return {name: f"<{name}>" if var.required else var.default for name, var in self.variables.items()}

    def context(self, values: dict[str, Any]) -> dict[str, Any]:
        """What templates may refer to: the variables, and `resources.KIND` (lists of names)."""
        ctx = {**RUNTIME, **values}
        for kind in KINDS:
            expanded: list[str] = []
            for name in self.resources.get(kind, ()):
                expanded.extend(expand_ranges(render(name, values)))
            ctx[f"resources.{kind}"] = expanded
        return ctx


# ------------------------------------------------------------------------------------------------ templates


def expand_ranges(text: str) -> list[str]:
    match = RANGE_RE.search(text)
    if not match:
        return [text]
    lo, hi = int(match.group(1)), int(match.group(2))
    out = []
    for n in range(lo, hi + 1):
        out.extend(expand_ranges(text[: match.start()] + str(n) + text[match.end():]))
    return out


def render(template: str, ctx: dict[str, Any], *, shell: bool = False) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in ctx:
            raise LabSpecError(f"unknown template name {{{{ {name} }}}}")
        val = ctx[name]
        if isinstance(val, (list, tuple)):
            return " ".join(shlex.quote(str(v)) for v in val) if shell else " ".join(map(str, val))
        return shlex.quote(str(val)) if shell else str(val)

    return TEMPLATE_RE.sub(value, template)


def render_value(value: Any, ctx: dict[str, Any]) -> Any:
    """Render templates inside probe arguments: a string that is exactly one `{{ list }}` stays a list."""
    if isinstance(value, str):
        match = TEMPLATE_RE.fullmatch(value.strip())
        if match and isinstance(ctx.get(match.group(1)), (list, tuple)):
            return list(ctx[match.group(1)])
        return render(value, ctx)
    if isinstance(value, list):
        out: list = []
        for item in value:
            rendered = render_value(item, ctx)
            out.extend(rendered if isinstance(rendered, list) and isinstance(item, str) else [rendered])
        return out
    if isinstance(value, dict):
        return {k: render_value(v, ctx) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------------------------ discovery


def lab_roots(extra: str | None = None) -> list[Path]:
    """Where labs are looked for: --labs, $CHECK_LAB_LABS, `labs/` here or above, the installed copy."""
    roots: list[Path] = []
    for candidate in (extra, os.environ.get("CHECK_LAB_LABS")):
        if candidate:
            roots.append(Path(candidate).expanduser())
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "labs").is_dir():
            roots.append(folder / "labs")
            break
    packaged = Path(__file__).resolve().parent / "labs"
    if packaged.is_dir():
        roots.append(packaged)
    repo = Path(__file__).resolve().parent.parent / "labs"  # a source checkout used without installing
    if repo.is_dir():
        roots.append(repo)
    seen, unique = set(), []
    for root in roots:
        key = root.resolve() if root.exists() else root
        if key not in seen:
            seen.add(key)
            unique.append(root)
    return unique


def available(extra: str | None = None) -> list[Lab]:
    """Every valid lab under the first root that has any (a broken one raises its LabSpecError)."""
    for root in lab_roots(extra):
        folders = sorted(p for p in root.iterdir() if (p / LAB_FILE).is_file()) if root.is_dir() else []
        if folders:
            return [load(folder) for folder in folders]
    return []


def _matches(arg: str, folder: Path, lab_id: str | None) -> bool:
    name = folder.name
    if arg in (name, lab_id):
        return True
    if name.startswith(arg + "-") or name.startswith(arg + "_"):
        return True
    prefix = re.match(r"^(\d+)", name)
    return arg.isdigit() and prefix is not None and int(prefix.group(1)) == int(arg)


def find(arg: str, extra: str | None = None) -> Lab:
    """A lab by path (a folder or its lab.yaml) or by id (`07`, `7`, `07-FS_layering`)."""
    path = Path(arg).expanduser()
    if path.is_file() and path.name == LAB_FILE:
        return load(path.parent)
    if path.is_dir():
        if not (path / LAB_FILE).is_file():
            raise UsageError(f"{arg} is a folder without a {LAB_FILE}: not a lab")
        return load(path)
    if os.sep in arg:
        raise UsageError(f"no lab folder at {arg}")
    known: list[str] = []
    for root in lab_roots(extra):
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if (p / LAB_FILE).is_file()):
            known.append(folder.name)
            if _matches(arg, folder, None):
                return load(folder)
        if known:
            break
    listing = ", ".join(known) if known else "none found"
    raise UsageError(f"unknown lab {arg!r}; known labs: {listing}")


# ------------------------------------------------------------------------------------------------ loading


class _Spec:
    """Reads one mapping of lab.yaml with messages that say where the problem is."""

    def __init__(self, data: Any, where: str, path: Path):
        if not isinstance(data, dict):
            raise LabSpecError(f"{path}: {where} must be a mapping")
        self.data, self.where, self.path = data, where, path

    def fail(self, msg: str) -> LabSpecError:
        return LabSpecError(f"{self.path}: {self.where}: {msg}")

    def get(self, key: str, kind, default: Any = ..., *, required: bool = False) -> Any:
        if key not in self.data:
            if required or default is ...:
                raise self.fail(f"missing `{key}`")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # YAML's true/false are not numbers here, although Python's bool is an int.
        if isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool)):
            return value
        names = " or ".join(k.__name__ for k in kinds)
        raise self.fail(f"`{key}` must be a {names}, not {type(value).__name__}")

    def only(self, allowed: set[str]) -> None:
        extra = sorted(set(self.data) - allowed)
        if extra:
            raise self.fail(f"unknown key `{extra[0]}` (allowed: {', '.join(sorted(allowed))})")


def _load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabSpecError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise LabSpecError(f"{path} is not UTF-8 text") from None
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if mark is not None:
            raise LabSpecError(f"{path}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {problem}") from None
        raise LabSpecError(f"{path}: invalid YAML: {problem}") from None


def _safe_file(folder: Path, name: str, spec: _Spec) -> str:
    """A file of the lab, inside its folder (no absolute paths, no `..`, no symlink leaving it)."""
    if not isinstance(name, str) or not name.strip():
        raise spec.fail("`files` entries must be file names")
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise spec.fail(f"file {name!r} is outside the lab folder")
    full = folder / rel
    if not full.exists():
        raise spec.fail(f"file {name!r} does not exist in {folder}")
    try:
        full.resolve().relative_to(folder.resolve())
    except ValueError:
        raise spec.fail(f"file {name!r} leads outside the lab folder (symlink)") from None
    if not full.is_file():
        raise spec.fail(f"{name!r} is not a regular file")
    return rel.as_posix()


def _lab_file(folder: Path, entry: Any, spec: _Spec) -> LabFile:
    """`name`, or `{from: PATH, to: NAME, replace: {OLD: NEW}, lab: ID}` (`lab`: a file of another lab of
    the same course, e.g. lab 04 builds lab 02's image from lab 02's files)."""
    if isinstance(entry, str):
        rel = _safe_file(folder, entry, spec)
        return LabFile(rel, rel)
    fspec = _Spec(entry, "files", spec.path)
    fspec.only({"from", "to", "replace", "lab"})
    prefix = ""
    if "lab" in fspec.data:
        other = str(fspec.get("lab", (str, int)))
        siblings = sorted(p for p in folder.parent.iterdir() if (p / LAB_FILE).is_file() and _matches(other, p, None))
        if not siblings:
            raise fspec.fail(f"`lab: {other}`: no such lab beside {folder.name}")
        prefix = f"../{siblings[0].name}/"
        _safe_file(siblings[0], fspec.get("from", str, required=True), spec)
        source = prefix + Path(fspec.get("from", str)).as_posix()
    else:
        source = _safe_file(folder, fspec.get("from", str, required=True), spec)
    dest = fspec.get("to", str, source)
    if Path(dest).is_absolute() or ".." in Path(dest).parts or not dest.strip():
        raise fspec.fail(f"`to: {dest}` must be a name inside the run's work folder")
    replace = fspec.get("replace", dict, {}) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in replace.items()):
        raise fspec.fail("`replace` maps text to text")
    return LabFile(source, Path(dest).as_posix(), tuple(replace.items()))


def load(folder: Path) -> Lab:
    from checker import parsers, probes  # the registries the spec refers to (with checks, resources)

    folder = Path(folder)
    path = folder / LAB_FILE
    top = _Spec(_load_yaml(path), "top level", path)
    top.only({"schema", "id", "title", "description", "variables", "files", "resources", "steps", "claims",
              "statements", "needs_docker", "course", "machines", "needs"})
    schema = top.get("schema", int, required=True)
    if schema != SCHEMA:
        raise top.fail(f"schema {schema} is not supported (this check-lab reads schema {SCHEMA})")
    lab_id = str(top.get("id", (str, int), required=True))
    title = top.get("title", str, required=True)

    variables: dict[str, Variable] = {}
    for name, raw in (top.get("variables", dict, {}) or {}).items():
        spec = _Spec(raw, f"variables.{name}", path)
        spec.only({"default", "type", "description", "min", "max", "pattern", "required"})
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)):
            raise spec.fail("variable names are letters, digits and _")
        vtype = spec.get("type", str, "str")
        if vtype not in ("str", "int"):
            raise spec.fail(f"type must be str or int, not {vtype}")
        required = spec.get("required", bool, False)
        if required and "default" in spec.data:
            raise spec.fail("a required variable has no default")
        default = None if required else spec.get("default", (str, int), required=True)
        var = Variable(str(name), default, vtype,
                       spec.get("description", str, ""), spec.get("min", int, None), spec.get("max", int, None),
                       spec.get("pattern", str, None), required)
        try:
            if not required:
                var = Variable(**{**var.__dict__, "default": var.convert(var.default, "default")})
            variables[name] = var
        except UsageError as exc:
            raise spec.fail(exc.message) from None

    files = tuple(_lab_file(folder, f, top) for f in (top.get("files", list, []) or []))
    course = _Spec(top.get("course", dict, {}) or {}, "course", path)
    course.only({"repository", "commit", "folder", "files"})
    for rel in (course.get("files", dict, {}) or {}):
        _safe_file(folder, rel, course)

    resources: dict[str, tuple[str, ...]] = {}
    res = _Spec(top.get("resources", dict, {}) or {}, "resources", path)
    res.only(set(KINDS))
    for key in res.data:
        names = res.get(key, list, [])
        if not all(isinstance(n, str) and n.strip() for n in names):
            raise res.fail(f"`{key}` must list names")
        for name in names:
            problem = KINDS[key].check_name(name)
            if problem:
                raise res.fail(f"`{key}`: {problem}")
        resources[key] = tuple(names)

    if "student" in variables:
        raise top.fail("`student` is a name of check-lab's own ({{ student }}: the --student ID), not a variable")
    known_names = set(variables) | {f"resources.{k}" for k in KINDS} | set(RUNTIME) | {"student"}

    def check_templates(text: str, spec: _Spec) -> None:
        for match in TEMPLATE_RE.finditer(text):
            if match.group(1) not in known_names:
                raise spec.fail(f"unknown name {{{{ {match.group(1)} }}}} (known: {', '.join(sorted(known_names))})")

    for names in resources.values():
        for name in names:
            check_templates(name, res)

    steps: list[Step] = []
    seen: set[str] = set()
    fact_names: set[str] = set()
    for i, raw in enumerate(top.get("steps", list, required=True)):
        if isinstance(raw, dict) and True in raw:  # YAML 1.1 reads the key `on` as true
            raw = {("on" if k is True else k): v for k, v in raw.items()}
        spec = _Spec(raw, f"steps[{i}]", path)
        spec.only({"id", "title", "run", "sudo", "timeout", "parse", "may_fail", "after", "observe", "course",
                   "departs", "addition", "capture", "on", "student", "needs"})
        sid = spec.get("id", str, required=True)
        spec.where = f"step {sid!r}"
        if not ID_RE.match(sid):
            raise spec.fail("ids are lower-case letters, digits and -")
        if sid in seen:
            raise spec.fail("duplicate step id")
        seen.add(sid)
        run = spec.get("run", str, required=True)
        check_templates(run, spec)
        parse = spec.get("parse", str, None)
        if parse is not None and parse not in parsers.PARSERS:
            raise spec.fail(f"unknown parser {parse!r} (known: {', '.join(sorted(parsers.PARSERS))})")
        timeout = spec.get("timeout", (int, float), DEFAULT_TIMEOUT)
        if timeout <= 0:
            raise spec.fail("timeout must be positive")
        captures = []
        for name, how in (spec.get("capture", dict, {}) or {}).items():
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", str(name)):
                raise spec.fail(f"`capture.{name}`: names are lower-case letters, digits and _")
            pattern, observe_cmd = (how, None) if isinstance(how, str) else (None, None)
            if isinstance(how, dict):
                cspec = _Spec(how, f"step {sid!r} capture.{name}", path)
                cspec.only({"match", "observe"})
                # Without `match`, a value only observe mode finds (where the student's clone is).
                pattern, observe_cmd = cspec.get("match", str, None), cspec.get("observe", str, None)
                if observe_cmd:
                    check_templates(observe_cmd, cspec)
                elif pattern is None:
                    raise spec.fail(f"`capture.{name}` needs `match:`, `observe:` or both")
            if pattern is None and observe_cmd is None:
                raise spec.fail(f"`capture.{name}` is a regular expression, or {{match: …, observe: …}}")
            try:
                re.compile(pattern or "", re.M)
            except re.error as exc:
                raise spec.fail(f"`capture.{name}`: not a regular expression: {exc}") from None
            captures.append((str(name), pattern, observe_cmd))
            known_names.add(f"captured.{name}")
        after = []
        for j, praw in enumerate(spec.get("after", list, [])):
            pspec = _Spec(praw, f"step {sid!r} after[{j}]", path)
            kind = pspec.get("probe", str, required=True)
            if kind not in probes.PROBES:
                raise pspec.fail(f"unknown probe {kind!r} (known: {', '.join(sorted(probes.PROBES))})")
            as_name = pspec.get("as", str, required=True)
            if as_name in fact_names or as_name in seen:
                raise pspec.fail(f"fact name {as_name!r} is used twice")
            fact_names.add(as_name)
            args = {k: v for k, v in pspec.data.items() if k not in ("probe", "as", "observe")}
            for v in args.values():
                if isinstance(v, str):
                    check_templates(v, pspec)
            problem = probes.PROBES[kind].check_args(args)
            if problem:
                raise pspec.fail(problem)
            observe = pspec.get("observe", (bool, str), True)
            if observe not in (True, False, "only"):
                raise pspec.fail("observe is true, false or only")
            after.append(Probe(kind, as_name, args, observe))
        if ("course" in spec.data) != ("departs" in spec.data):
            raise spec.fail("`course:` (the command as the course prints it) and `departs:` (how and why this "
                            "step differs) go together")
        observe = spec.get("observe", (bool, str), False)
        observe_run = None
        if isinstance(observe, str):  # the step's observe form: a command that only looks
            if not observe.strip():
                raise spec.fail("`observe:` is true, false or the command observe mode runs instead")
            check_templates(observe, spec)
            observe, observe_run = False, observe
        student_run = student_why = None
        if "student" in spec.data:
            sspec = _Spec(spec.get("student", dict), f"step {sid!r} student", path)
            sspec.only({"run", "why"})
            student_run, student_why = sspec.get("run", str, required=True), sspec.get("why", str, required=True)
            check_templates(student_run, sspec)
            if "{{ student }}" not in student_run:
                raise sspec.fail("`student.run` leaves the student's mark: it uses {{ student }}")
        steps.append(Step(sid, spec.get("title", str, sid), run, spec.get("sudo", bool, False), float(timeout),
                          parse, spec.get("may_fail", bool, False), tuple(after), observe,
                          spec.get("course", str, None), spec.get("departs", str, None),
                          spec.get("addition", str, None), tuple(captures), observe_run,
                          spec.get("on", str, None), student_run, student_why, _engine_needs(spec)))

    facts_known = seen | fact_names | {"engine"}  # the engine is gathered before any step
    claim_specs = _checks(top.get("claims", list, required=True), "claims", path, facts_known, known_names)
    statements = _checks(top.get("statements", list, []), "statements", path, facts_known, known_names)

    for f in files:
        for old, new in f.replace:
            check_templates(new, top)
    machines = top.get("machines", list, ["docker-vm"])
    needs = top.get("needs", list, [])
    if not machines or not all(isinstance(m, str) for m in machines + needs):
        raise top.fail("`machines` and `needs` list names")
    if len(set(machines)) != len(machines):
        raise top.fail("`machines` names a machine twice")
    for step in steps:
        if step.on is not None and step.on not in machines:
            raise top.fail(f"step {step.id!r}: `on: {step.on}` is not one of the lab's machines "
                           f"({', '.join(machines)})")
    return Lab(lab_id, title, folder.resolve(), top.get("description", str, "").strip(), variables, files,
               resources, tuple(steps), claim_specs, statements, top.get("needs_docker", bool, True),
               dict(course.data), tuple(machines), tuple(needs))


def _checks(items: list, section: str, path: Path, facts_known: set[str], known_names: set[str]) -> tuple[ClaimSpec, ...]:
    """The `claims` (or `statements`) of a lab: each a registered check with its `with:` parameters, or a
    YAML matcher (`expect:`, checker/claims/matcher.py) that needs no Python."""
    from checker.checks import registry

    checks = registry()
    specs: list[ClaimSpec] = []
    ids: set[str] = set()
    title_key = "title" if section == "claims" else "text"
    for i, raw in enumerate(items):
        spec = _Spec(raw, f"{section}[{i}]", path)
        spec.only({"id", title_key, "check", "with", "expect", "hint", "points", "addition", "student", "needs"}
                  if section == "claims" else {"id", title_key, "check", "with", "expect", "needs"})
        cid = spec.get("id", str, required=True)
        spec.where = f"{section[:-1]} {cid!r}"
        if not ID_RE.match(cid):
            raise spec.fail("ids are lower-case letters, digits and -")
        if cid in ids:
            raise spec.fail(f"duplicate {section[:-1]} id")
        ids.add(cid)
        if ("check" in spec.data) == ("expect" in spec.data):
            raise spec.fail("give either `check:` (a registered check) or `expect:` (a YAML matcher)")
        if "expect" in spec.data:
            check, args = "expect", spec.get("expect", dict)
            if "with" in spec.data:
                raise spec.fail("`with:` belongs to `check:`; an `expect:` says everything itself")
        else:
            check = spec.get("check", str)
            args = spec.get("with", dict, {}) or {}
        if check not in checks:
            raise spec.fail(f"unknown check {check!r} (known: {', '.join(sorted(checks))})")
        problem = checks[check].check_args(args, facts_known)
        if problem:
            raise spec.fail(problem)
        for value in _strings(args):
            for match in TEMPLATE_RE.finditer(value):
                if match.group(1) not in known_names:
                    raise spec.fail(f"unknown name {{{{ {match.group(1)} }}}} (known: {', '.join(sorted(known_names))})")
        points = spec.get("points", (int, float), 1) if section == "claims" else 0
        if points < 0:
            raise spec.fail("points must not be negative")
        student = spec.get("student", bool, False) if section == "claims" else False
        if student and "addition" not in spec.data:
            raise spec.fail("a claim judged only with --student is an addition: say what it asks (`addition:`)")
        needs = _engine_needs(spec)
        specs.append(ClaimSpec(cid, spec.get(title_key, str, cid if section == "claims" else ...), check, args,
                               spec.get("hint", str, "") if section == "claims" else "", float(points),
                               spec.get("addition", str, None) if section == "claims" else None, student,
                               needs))
    return tuple(specs)


def _engine_needs(spec: _Spec) -> tuple[str, ...]:
    """A step's, claim's or statement's `needs:`: engine features (records.ENGINE_FEATURES)."""
    needs = spec.get("needs", list, [])
    unknown = [n for n in needs if n not in ENGINE_FEATURES]
    if unknown:
        raise spec.fail(f"`needs:` {', '.join(map(str, unknown))}: the engine features are "
                        f"{', '.join(sorted(ENGINE_FEATURES))}")
    return tuple(needs)


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def parse_sets(pairs: list[str] | None) -> dict[str, str]:
    """`--set KEY=VALUE` pairs (syntax only; names and values are checked against the lab)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {pair!r}: expected KEY=VALUE")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise UsageError(f"--set {pair!r}: {key!r} is not a variable name")
        out[key.strip()] = value
    return out


@dataclass
class Plan:
    """A lab with its variables' values bound: what the runner executes."""

    lab: Lab
    values: dict[str, Any]
    student: str | None = None  # --student ID: the steps' student forms run, the claims on the mark are judged
    context: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.context = {**runtime_defaults(self.lab), **self.lab.context(self.values), "student": self.student or ""}

    def scope(self, runtime: dict | None = None) -> dict[str, Any]:
        """What templates see: the lab's context, and what the run learnt (`runtime`, e.g. captured values)."""
        return {**self.context, **(runtime or {})}

    def render(self, command: str, runtime: dict | None = None) -> str:
        """A shell command of the lab, its templates filled."""
        return render(command, self.scope(runtime), shell=True)

    def command(self, step: Step, runtime: dict | None = None, *, observing: bool = False) -> str:
        """The step's command, its templates filled (`observing`: its observe form, where it has one)."""
        if observing and step.observe_run:
            return self.render(step.observe_run, runtime)
        return self.render(step.student_run if self.student and step.student_run else step.run, runtime)

    def probe_args(self, probe: Probe, runtime: dict | None = None) -> dict:
        return render_value(probe.args, self.scope(runtime))

    def resources(self, kind: str) -> list[str]:
        return list(self.context.get(f"resources.{kind}", []))

    def all_resources(self) -> dict[str, list[str]]:
        """The lab's resources by kind, names expanded (only kinds it has)."""
        return {key: self.resources(key) for key in self.lab.resources}

    def _rendered(self, specs: tuple[ClaimSpec, ...], runtime: dict | None = None) -> list[ClaimSpec]:
        """Claims with their `with:` rendered with the lab's variables (and each check's option defaults,
        which may refer to them too, filled in)."""
        from checker.checks import registry

        checks = registry()
        out = []
        for spec in specs:
            chk = checks[spec.check]
            args = dict(spec.args) if chk.validate else {**chk.options, **spec.args}
            out.append(ClaimSpec(spec.id, spec.title, spec.check, render_value(args, self.scope(runtime)),
                                 spec.hint, spec.points, spec.addition, spec.student, spec.needs))
        return out

    def _own(self, specs: tuple[ClaimSpec, ...]) -> tuple[ClaimSpec, ...]:
        """The claims this run judges: those on the student's mark only with --student."""
        return tuple(spec for spec in specs if self.student or not spec.student)

    @property
    def claims(self) -> list[ClaimSpec]:
        return self._rendered(self._own(self.lab.claims))

    @property
    def statements(self) -> list[ClaimSpec]:
        return self._rendered(self.lab.statements)

    def judged(self, runtime: dict) -> tuple[list[ClaimSpec], list[ClaimSpec]]:
        """The claims and statements with what the run learnt (captured values) filled in."""
        return self._rendered(self._own(self.lab.claims), runtime), self._rendered(self.lab.statements, runtime)

    def file_bytes(self, f: LabFile) -> bytes:
        """The content uploaded for `f`: the lab's file, with its replacements rendered and applied."""
        data = (self.lab.folder / f.source).read_bytes()
        for old, new in f.replace:
            data = data.replace(old.encode(), render(new, self.context).encode())
        return data

    def departures(self) -> list[dict]:
        """Where the steps differ from the course's text, and what the checker adds to it."""
        out = []
        for step in self.lab.steps:
            if self.student and step.student_run:
                out.append({"step": step.id, "kind": "addition", "course": (step.course or step.run).strip(),
                            "here": self.command(step).strip(),
                            "why": f"--student {self.student}: " + self._text(step.student_why)
                                   + (f"; and {self._text(step.departs)}" if step.departs else "")})
                continue
            if step.departs:
                out.append({"step": step.id, "kind": "departs", "course": step.course.strip(),
                            "here": self.command(step).strip(), "why": self._text(step.departs)})
            if step.addition:
                out.append({"step": step.id, "kind": "addition", "course": None, "here": self.command(step).strip(),
                            "why": self._text(step.addition)})
        for f in self.lab.files:
            if f.replace and self.file_bytes(f) != (self.lab.folder / f.source).read_bytes():
                out.append({"step": None, "kind": "file", "course": f.source, "here": f.dest,
                            "why": "the uploaded copy differs from the course's file: "
                                   + "; ".join(f"{old!r} -> {render(new, self.context)!r}" for old, new in f.replace)})
        for claim in self._own(self.lab.claims):
            if claim.addition:
                out.append({"claim": claim.id, "kind": "addition", "why": self._text(claim.addition)})
        return out

    def _text(self, text: str) -> str:
        return " ".join(render(text, self.context).split())

    def info(self) -> LabInfo:
        return LabInfo(self.lab.id, self.lab.title, str(self.lab.folder), dict(self.values),
                       tuple(self.departures()))
