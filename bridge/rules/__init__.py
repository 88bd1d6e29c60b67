"""The rules stage: load the YAML routing rules, match event documents, render intents.

    config = load_config("config/rules.yaml")          # ConfigError lists every problem
    match = config.match(delivery.document)             # intents, rejections, traces
"""
from bridge.rules.errors import ConfigError
from bridge.rules.loader import load_config
from bridge.rules.model import (ACTIONS, Config, Defaults, Intent, IntentSpec, Match, Rejection, Rule,
                                RuleTrace)

__all__ = ["ACTIONS", "Config", "ConfigError", "Defaults", "Intent", "IntentSpec", "Match", "Rejection",
           "Rule", "RuleTrace", "load_config"]
