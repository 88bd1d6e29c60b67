"""`load_config`: file -> YAML tree -> marshmallow -> Config, or one ConfigError with every problem."""
from __future__ import annotations

import os
from typing import Mapping

from marshmallow import ValidationError

from bridge.rules.errors import ConfigError, Problem, flatten_messages, format_problem, plain_message
from bridge.rules.model import Config
from bridge.rules.schema import ConfigSchema
from bridge.rules.yamlfile import YamlTree, environment, read_yaml

MIN_SECRET_TO_MASK = 3   # shorter values would garble messages and hide nothing worth hiding


def load_config(path: str | os.PathLike, environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate the rules file. Raises ConfigError listing every problem at once."""
    file = os.fspath(path)
    tree, problems = read_yaml(file, environment(environ))
    if tree is None:
        raise ConfigError([format_problem(file, p.line or 1, p.path, p.message) for p in problems])
    try:
        loaded = ConfigSchema().load(tree.data)
    except ValidationError as exc:
        problems += _schema_problems(exc.messages, tree)
        loaded = None
    if problems:
        raise ConfigError(_report(file, problems, tree))
    return Config(file, loaded["defaults"], loaded["sources"], loaded["rules"])


def _schema_problems(messages: dict, tree: YamlTree) -> list[Problem]:
    """Drop errors on values whose variable was unset: the unset variable is the one thing to fix."""
    return [problem for problem in flatten_messages(messages) if problem.path not in tree.unset_paths]


def _report(file: str, problems: list[Problem], tree: YamlTree) -> list[str]:
    placed = [(problem.line or tree.line_of(problem.path), problem) for problem in problems]
    placed.sort(key=lambda item: item[0])
    return [_mask(format_problem(file, line, problem.path, _with_variables(problem, tree)), tree)
            for line, problem in placed]


def _with_variables(problem: Problem, tree: YamlTree) -> str:
    """Say which variable fed a bad value: the fix is in the environment, not in the file."""
    names = tree.variables.get(problem.path)
    message = plain_message(problem.message)
    if not names or problem.path in tree.unset_paths:
        return message
    listed = ", ".join(f"${{{name}}}" for name in names)
    return f"{message} (the value comes from {listed})"


def _mask(line: str, tree: YamlTree) -> str:
    """Last line of defence: no message may carry the value of a substituted variable."""
    for value, name in sorted(tree.secrets.items(), key=lambda item: -len(item[0])):
        if len(value) >= MIN_SECRET_TO_MASK:
            line = line.replace(value, f"<value of ${{{name}}}>")
    return line
