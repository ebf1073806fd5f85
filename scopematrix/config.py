"""YAML loading with line numbers, and pydantic validation errors turned into one fixable line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from scopematrix.errors import UsageError
from scopematrix.rules import catalog

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]


class Strict(BaseModel):
    """Base for config models: unknown keys are errors, objects are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


MAX_BYTES = 1_000_000
# libyaml where PyYAML was built with it (the usual wheels): the same safe loader, several times faster.
LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_NODES = 200_000  # counted with aliases expanded, as validation would see them


def _bounded(text: str, path: Path) -> None:
    """Refuse what would hang or crash the loader: deep nesting, alias bombs (checked on the event stream,
    which is flat, before anything is built)."""
    depth = aliases = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):  # pure Python: libyaml stops deep nests first
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark.line + 1 if event.start_mark else "?"
                raise UsageError(f"{path}:{mark}: nested more than {MAX_DEPTH} levels deep.", "flatten the file.")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise UsageError(f"{path}: more than {MAX_ALIASES} YAML aliases (*name).", "write the values out.")


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many nodes the document has once aliases are expanded; shared nodes are counted once per use."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a node that contains itself counts once
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, memo) for item in node.value)
    memo[id(node)] = min(size, MAX_NODES + 1)
    return memo[id(node)]


class DuplicateKey(ValueError):
    """A mapping names a key twice: YAML keeps the last one silently, which hides the first."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _lines(node: yaml.Node, loc: Loc, out: dict[Loc, int], seen: set[int]) -> None:
    out[loc] = node.start_mark.line + 1
    if id(node) in seen:  # an alias: its lines are those of its anchor, already walked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: dict[object, int] = {}
        for key, _ in node.value:
            line = key.start_mark.line + 1
            if isinstance(key, yaml.ScalarNode) and key.value in keys and key.value != "<<":
                raise DuplicateKey(f"'{key.value}' is given twice (lines {keys[key.value]} and {line})", line)
            keys[key.value] = line
        for key, value in node.value:
            out[(*loc, key.value)] = key.start_mark.line + 1
            _lines(value, (*loc, key.value), out, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*loc, i), out, seen)


def load_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse a YAML file; return the data and a map from key path to line number."""
    if not path.is_file():
        raise UsageError(f"{path}: file not found.", "pass an existing YAML file (see fixtures/ for examples).")
    raw = path.read_bytes()
    if len(raw) > MAX_BYTES:
        raise UsageError(f"{path}: larger than {MAX_BYTES // 1000} kB.", "a matrix or scenario is a small file.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text.", "save the file as UTF-8.") from None
    try:
        _bounded(text, path)
        loader = LOADER(text)
        try:
            node = loader.get_single_node()
            if node is not None and _expanded_size(node, {}) > MAX_NODES:
                raise UsageError(f"{path}: expands to more than {MAX_NODES} values.", "write a smaller file.")
            data = loader.construct_document(node) if node is not None else None  # one parse, not two
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise UsageError(f"{where}: malformed YAML ({problem}).", "fix the YAML syntax on that line.") from None
    except RecursionError:
        raise UsageError(f"{path}: nested too deeply.", "flatten the file.") from None
    lines: dict[Loc, int] = {}
    if node is not None:
        try:
            _lines(node, (), lines, set())
        except DuplicateKey as exc:
            raise UsageError(f"{path}:{exc.line}: {exc}.", "keep one of them (merge their contents).") from None
    return data, lines


def line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _fix_for(kind: str, loc: Loc, msg: str) -> str:
    if kind == "extra_forbidden":
        return f"remove '{loc[-1]}' or correct its spelling."
    if kind == "missing":
        return f"add '{loc[-1]}'."
    if kind.startswith("value_error"):
        return msg.split("Fix: ", 1)[1] if "Fix: " in msg else "correct the value."
    return "correct the value's type."


def validate(model: type[M], data: Any, path: Path, lines: dict[Loc, int]) -> M:
    """Validate data against a model; the first error becomes a UsageError with file:line."""
    if data is None:
        raise UsageError(f"{path}: the file is empty.", "fill it in as shown in the README.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc: Loc = tuple(err["loc"])
        line = line_of(lines, loc)
        where = f"{path}:{line}" if line else str(path)
        msg = str(err["msg"]).removeprefix("Value error, ")
        problem = msg.split(" Fix: ", 1)[0]
        fix = _fix_for(err["type"], loc, msg)
        raise UsageError(f"{where}: {dotted(loc)}: {problem.rstrip('.')}.", fix) from None


def fail(problem: str, fix: str) -> ValueError:
    """A ValueError for pydantic validators that carries its fix."""
    return ValueError(f"{problem} Fix: {fix}")


def known_scopes(names: list[str]) -> list[str]:
    """Validator: every name is a HubSpot scope; an unknown one gets a "did you mean"."""
    for name in names:
        if not catalog.known(name):
            hint = catalog.suggest(name)
            raise fail(
                f"unknown scope '{name}'",
                f"did you mean '{hint}'?" if hint else "use a scope name from HubSpot's scope list.",
            )
    return names


def unique_ids(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise fail(f"duplicate id '{i}' in {what}", "give every entry its own id.")
        seen.add(i)
