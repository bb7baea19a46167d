"""Which mail templates the API may use, and what each needs.

A template is a folder ``templates/<name>/`` like every mail (subject.txt, body.txt, body.html); the API
may use it when the folder also holds a ``meta.toml`` with ``api = true`` and ``personalisation = ["key",
…]``: the keys its text uses, each given by the caller as a string. An operator adds one without code;
a meta.toml that cannot be read makes its template unusable (logged once), never the API.
"""

from __future__ import annotations

import logging
import os
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailflow.paths import templates_dir

log = logging.getLogger(__name__)

META = "meta.toml"
FRESHNESS_SECONDS = 1.0  # an operator's new or edited meta.toml counts within this time
MAX_VALUE_CHARS = 2000  # a personalisation value; more is not a value of a notice


@dataclass(frozen=True)
class ApiTemplate:
    name: str
    personalisation: tuple[str, ...]


_cache: dict[str, tuple[float, dict[str, ApiTemplate]]] = {}


def api_templates() -> dict[str, ApiTemplate]:
    """Every template the API may use, by name (read again at most once a second)."""
    # Keyed on the variable templates_dir() reads: dispatch asks for every mail it records, and building
    # the folder's Path each time cost more than the rest of the question (76 us against 1).
    override = os.environ.get("MAILFLOW_TEMPLATES_DIR", "")
    cached = _cache.get(override)
    moment = time.monotonic()
    if cached is not None and moment - cached[0] < FRESHNESS_SECONDS:
        return cached[1]
    found = _scan(str(templates_dir()))
    _cache[override] = (moment, found)
    return found


def is_api_template(name: str) -> bool:
    return name in api_templates()


def _scan(folder: str) -> dict[str, ApiTemplate]:
    found: dict[str, ApiTemplate] = {}
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return found
    for name in names:
        path = os.path.join(folder, name, META)
        if not os.path.isfile(path):
            continue
        template = _read_meta(name, path)
        if template is not None:
            found[name] = template
    return found


_warned: set[tuple[str, str]] = set()


def _read_meta(name: str, path: str) -> ApiTemplate | None:
    try:
        with open(path, "rb") as handle:
            meta = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        _unusable(name, f"cannot read {META}: {exc}")
        return None
    keys = meta.get("personalisation", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) and k.isidentifier() for k in keys):
        _unusable(name, "personalisation must be a list of names")
        return None
    if meta.get("api") is not True:
        return None
    return ApiTemplate(name, tuple(keys))


def _unusable(name: str, why: str) -> None:
    if (name, why) not in _warned:
        _warned.add((name, why))
        log.warning("template %s is not available to the API: %s", name, why)


def personalisation_errors(template: ApiTemplate, values: Any) -> dict[str, str]:
    """What is wrong with ``values`` for ``template``, keyed ``personalisation`` or
    ``personalisation.<key>`` (zh-TW); empty when they fit exactly."""
    if not isinstance(values, Mapping):
        return {"personalisation": "personalisation 必須是 JSON 物件,例如 {\"name\": \"王小明\"}"}
    errors: dict[str, str] = {}
    wanted = set(template.personalisation)
    missing = [key for key in template.personalisation if key not in values]
    extra = sorted(str(key) for key in values if key not in wanted)
    if missing or extra:
        parts = []
        if missing:
            parts.append("缺少:" + ", ".join(missing))
        if extra:
            parts.append("此範本不使用:" + ", ".join(extra))
        errors["personalisation"] = ";".join(parts) + f"(範本 {template.name} 需要:" \
            + ", ".join(template.personalisation) + ")"
    for key in template.personalisation:
        value = values.get(key)
        if key not in values:
            continue
        if not isinstance(value, str):
            errors[f"personalisation.{key}"] = "必須是字串"
        elif not value.strip():
            errors[f"personalisation.{key}"] = "不可空白"
        elif len(value) > MAX_VALUE_CHARS:
            errors[f"personalisation.{key}"] = f"最多 {MAX_VALUE_CHARS} 字"
        elif "\x00" in value:
            errors[f"personalisation.{key}"] = "含有無法使用的字元"
    return errors
