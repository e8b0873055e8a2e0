"""Loading a run config: YAML or JSON, dotted ``--set`` overrides, and errors that name the key.

Unknown keys and wrong types are rejected with an error that names the file and the offending key.
Dotted overrides (``finetune.zero_stage=3``) are applied before validation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from commerce_lm.config.sections import RunConfig
from commerce_lm.config.step_sections import StepSection
from commerce_lm.config.steps import SECTIONS, section_for


class ConfigError(ValueError):
    """A run config that cannot be used; the message names the file and the key."""


def _apply_override(raw: dict[str, Any], override: str) -> None:
    if "=" not in override:
        raise ConfigError(f"override {override!r}: expected KEY=VALUE, e.g. finetune.epochs=2")
    key, value = override.split("=", 1)
    node = raw
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"override {override!r}: {key!r} is not a dotted key")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {part!r} is not a section")
    try:
        node[parts[-1]] = yaml.safe_load(value)
    except yaml.YAMLError as error:
        reason = " ".join(str(error).split())
        raise ConfigError(f"override {override!r}: the value is not valid YAML: {reason}") from None


def _resolve_paths(cfg: RunConfig, base: Path) -> None:
    """Make relative local paths absolute against the config file's folder."""
    for spec in [cfg.domain, *cfg.tasks, *cfg.similarity]:
        spec.data = _resolve(spec.data, base)
    cfg.model = _resolve(cfg.model, base, must_exist=True)
    if cfg.embed.store:
        cfg.embed.store = _resolve(cfg.embed.store, base)
    if cfg.publish.location:
        cfg.publish.location = _resolve(cfg.publish.location, base)


def _resolve(location: str, base: Path, must_exist: bool = False) -> str:
    if "://" in location or Path(location).is_absolute():
        return location
    candidate = (base / location).resolve()
    if must_exist and not candidate.exists():
        return location  # a hub id such as FacebookAI/xlm-roberta-base
    return str(candidate)


def _format_error(source: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid run config"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "<root>"
        msg = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def parse_config(raw: dict[str, Any], source: str = "<config>") -> RunConfig:
    """Validate a config mapping.

    Args:
        raw: The parsed mapping.
        source: What to call it in error messages (usually the file path).

    Returns:
        The validated config.

    Raises:
        ConfigError: On unknown keys, missing keys or wrong types, naming each key.
    """
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_error(source, error)) from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load, override and validate a YAML run config; relative data paths resolve against it.

    Args:
        path: The YAML file.
        overrides: Dotted ``KEY=VALUE`` overrides, values parsed as YAML.

    Returns:
        The validated config with absolute local paths.

    Raises:
        ConfigError: When the file is missing, not a mapping, or invalid.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for override in overrides or []:
        _apply_override(raw, override)
    cfg = parse_config(raw, str(path))
    _resolve_paths(cfg, path.parent)
    return cfg


def config_from_json(text: str) -> RunConfig:
    """Rebuild a resolved config passed between steps as JSON."""
    return parse_config(_json_object(text), "<resolved config>")


def _json_object(text: str) -> dict[str, Any]:
    """The JSON object ``--config-json`` holds; anything else is a one-line error."""
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"--config-json: not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError("--config-json: expected a JSON object")
    return raw


def section_from_json(step: str, text: str) -> StepSection:
    """A step's section from JSON: the section itself (what components pass) or a whole run config.

    Args:
        step: The step's command name, e.g. ``finetune-encoder``.
        text: JSON of the step's section, or of a resolved run config to cut the section from.

    Returns:
        The validated section.

    Raises:
        ConfigError: On invalid JSON, unknown keys, missing keys or wrong types, naming each key.
    """
    raw = _json_object(text)
    section = SECTIONS[step]
    if set(raw) <= set(section.model_fields):
        try:
            return section.model_validate(raw)
        except ValidationError as error:
            raise ConfigError(_format_error(f"<{step} section>", error)) from None
    return section_for(step, parse_config(raw, "<resolved config>"))
