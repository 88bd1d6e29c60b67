"""Reading the rules file: YAML with line numbers, no duplicate keys, `${NAME}` from the environment.

The file is turned into plain Python values (dict, list, str, int, float, bool, None) plus a map
from key path to line, so that validation never sees ruamel types and every error can still be
placed on the line the user has to fix.
"""
from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarbool import ScalarBoolean

from bridge.rules.errors import Problem

MAX_DEPTH = 64
EXPECTED_TOP = "expected a mapping with the keys defaults, sources and rules"
# `$${` writes a literal `${`; `${NAME}` is a variable; any other `${` is a mistake worth reporting.
_REFERENCE = re.compile(r"\$\$\{|\$\{([^{}]*)\}|\$\{")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class YamlTree:
    """The plain data of the file and what is needed to report on it afterwards."""

    data: Any
    lines: dict[tuple, int] = field(default_factory=lambda: {(): 1})
    variables: dict[tuple, list[str]] = field(default_factory=dict)   # path -> names used there
    unset_paths: set[tuple] = field(default_factory=set)              # paths whose variable is missing
    secrets: dict[str, str] = field(default_factory=dict)             # substituted value -> name

    def line_of(self, path: tuple) -> int:
        """Line of the deepest key of `path` that exists: a missing key is reported at its parent."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


def read_yaml(path: str, environ: Mapping[str, str]) -> tuple[YamlTree | None, list[Problem]]:
    """Parse the file; on failure return the problems, placed on their lines."""
    text, problems = _read_text(path)
    if problems:
        return None, problems
    root, problems = _compose(text)
    if problems:
        return None, problems
    problems = _structure_problems(root)
    if problems:
        return None, problems
    try:
        loaded = YAML(typ="rt").load(text)
    except YAMLError as exc:
        return None, [_yaml_problem(exc)]
    except (ValueError, TypeError) as exc:  # `!!int abc`: ruamel raises without a line to point at
        return None, [Problem(("(yaml)",), f"a typed value cannot be read ({exc}); expected a value that "
                              "fits its !!tag, or no tag", 1)]
    tree = YamlTree(data=None)
    walker = _Walker(tree, environ)
    tree.data = walker.plain(loaded, ())
    return tree, walker.problems


def _read_text(path: str) -> tuple[str, list[Problem]]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        return "", [Problem((), f"cannot read the file ({exc.strerror}); expected a readable YAML file", 1)]
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return "", [Problem((), "the file is not UTF-8 text; expected a UTF-8 encoded YAML file", line)]


def _compose(text: str) -> tuple[Node | None, list[Problem]]:
    """Build the node tree first: syntax errors surface here with a line, before any value is built."""
    try:
        return YAML(typ="rt").compose(text), []
    except YAMLError as exc:
        return None, [_yaml_problem(exc)]


def _yaml_problem(exc: YAMLError) -> Problem:
    """ruamel's errors carry a mark (0-based line); its own message can quote values, so use `problem`."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else 1
    problem = getattr(exc, "problem", None) or type(exc).__name__
    return Problem(("(yaml)",), f"YAML syntax error: {problem}; expected valid YAML", line)


def _structure_problems(root: Node | None) -> list[Problem]:
    """An empty file, a non-mapping top level, duplicate keys and runaway nesting, all at once."""
    if root is None:
        return [Problem((), f"the file is empty; {EXPECTED_TOP}", 1)]
    if not isinstance(root, MappingNode):
        kind = "a list" if isinstance(root, SequenceNode) else "a single value"
        return [Problem((), f"the top level is {kind}; {EXPECTED_TOP}", root.start_mark.line + 1)]
    problems: list[Problem] = []
    _find_duplicates(root, (), problems, set())
    return problems


def _find_duplicates(node: Node, path: tuple, problems: list[Problem], seen: set[int]) -> None:
    """Report every duplicate key (ruamel stops at the first); `seen` keeps aliases from looping."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if len(path) > MAX_DEPTH:
        problems.append(Problem(path, f"nested deeper than {MAX_DEPTH} levels; expected a flatter file",
                                node.start_mark.line + 1))
        return
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _find_duplicates(item, path + (index,), problems, seen)
    elif isinstance(node, MappingNode):
        _check_mapping(node, path, problems, seen)


def _check_mapping(node: MappingNode, path: tuple, problems: list[Problem], seen: set[int]) -> None:
    first_lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, ScalarNode) else id(key_node)
        line = key_node.start_mark.line + 1
        if key in first_lines and key != "<<":
            problems.append(Problem(path + (key,), f"duplicate key (first defined on line {first_lines[key]});"
                                    " expected each key once per mapping", line))
        first_lines.setdefault(key, line)
        _find_duplicates(value_node, path + (key,), problems, seen)


class _Walker:
    """Converts ruamel values to plain ones, recording lines and substituting `${NAME}`."""

    def __init__(self, tree: YamlTree, environ: Mapping[str, str]):
        self.tree = tree
        self.environ = environ
        self.problems: list[Problem] = []

    def plain(self, value: Any, path: tuple) -> Any:
        if len(path) > MAX_DEPTH:
            return None  # already reported by _find_duplicates
        if isinstance(value, CommentedMap):
            return self._mapping(value, path)
        if isinstance(value, CommentedSeq):
            return self._sequence(value, path)
        if isinstance(value, str):
            return self._substitute(str(value), path)
        return self._scalar(value, path)

    def _mapping(self, mapping: CommentedMap, path: tuple) -> dict:
        result = {}
        for key, item in mapping.items():
            plain_key = self._scalar(key, path) if not isinstance(key, str) else str(key)
            self.tree.lines[path + (plain_key,)] = _key_line(mapping, key, self.tree.line_of(path))
            result[plain_key] = self.plain(item, path + (plain_key,))
        return result

    def _sequence(self, sequence: CommentedSeq, path: tuple) -> list:
        result = []
        for index, item in enumerate(sequence):
            self.tree.lines[path + (index,)] = _item_line(sequence, index, self.tree.line_of(path))
            result.append(self.plain(item, path + (index,)))
        return result

    def _scalar(self, value: Any, path: tuple) -> Any:
        """Strip ruamel's subclasses so that `type(x) is bool` and JSON equality behave as in Python."""
        if isinstance(value, (bool, ScalarBoolean)):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, (datetime.date, datetime.datetime)):
            return value.isoformat()  # payloads carry dates as text, so compare them as text
        if isinstance(value, TaggedScalar):
            self.problems.append(Problem(path, "YAML tags (like !tag) are not supported; expected a plain value"))
            return None
        return value

    def _substitute(self, text: str, path: tuple) -> str:
        return _REFERENCE.sub(lambda match: self._replacement(match, path), text)

    def _replacement(self, match: re.Match, path: tuple) -> str:
        if match.group(0) == "$${":
            return "${"
        name = match.group(1)
        if name is None or not _VARIABLE_NAME.fullmatch(name):
            self.problems.append(Problem(path, "malformed variable reference; expected ${NAME} with a name of "
                                         "letters, digits and underscores (write $${ for a literal ${)"))
            return ""
        self.tree.variables.setdefault(path, []).append(name)
        if name not in self.environ:
            self.tree.unset_paths.add(path)
            self.problems.append(Problem(path, f"environment variable {name} is not set; "
                                         f"expected it to be set (referenced as ${{{name}}})"))
            return ""
        value = self.environ[name]
        if value:
            self.tree.secrets[value] = name
        return value


def _key_line(mapping: CommentedMap, key: Any, fallback: int) -> int:
    try:
        return mapping.lc.key(key)[0] + 1
    except (KeyError, TypeError, AttributeError):
        return fallback  # keys brought in by a `<<` merge have no line of their own


def _item_line(sequence: CommentedSeq, index: int, fallback: int) -> int:
    try:
        return sequence.lc.item(index)[0] + 1
    except (KeyError, TypeError, AttributeError):
        return fallback


def environment(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    """`os.environ` unless the caller (a test, `bridge check --env`) brings its own."""
    return os.environ if environ is None else environ
