"""Key names come only from runstore/keys.py: no Lua script pastes one together.

Every module-level Lua source in runstore is scanned for string literals that look like a
piece of a key name (they hold the key separator `:`), and every family prefix `Keys` hands
to the scripts is checked against the per-id method it stands for.
"""

import importlib
import json
import pkgutil
import re

import pytest

import runstore
from runstore import Keys

# Hash *field* names with a colon (the stats hash: runs:<status>, duration_le:<bound>), not keys.
FIELD_PREFIXES = {"runs:", "duration_le:"}
# Modules whose scripts the scan must find (so that it cannot pass by finding nothing).
SCRIPTED = {"fairqueue", "leases", "quota", "scripts", "strays", "users"}
# A Lua short string in single or double quotes, with its escapes.
_STRING = {q: re.compile(rf"{q}((?:[^{q}\\\n]|\\.)*){q}") for q in "'\""}


def lua_sources() -> dict[str, str]:
    """`module.NAME` -> source, for every module-level string in runstore that is Lua."""
    sources = {}
    for info in pkgutil.iter_modules(runstore.__path__):
        module = importlib.import_module(f"runstore.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, str) and "redis.call" in value:
                sources[f"{info.name}.{name}"] = value
    return sources


def literals(lua: str) -> list[str]:
    """The quoted string literals of a Lua source, comments skipped."""
    out, i = [], 0
    while i < len(lua):
        if lua.startswith("--", i):
            end = lua.find("\n", i)
            i = len(lua) if end < 0 else end
        elif lua[i] in _STRING:
            match = _STRING[lua[i]].match(lua, i)
            assert match, f"unterminated string at {lua[i : i + 40]!r}"
            out.append(match[1])
            i = match.end()
        else:
            i += 1
    return out


def key_literals(lua: str) -> list[str]:
    """Literals that hold a piece of a key name."""
    return [s for s in literals(lua) if ":" in s and s not in FIELD_PREFIXES]


def test_the_scanner_finds_pasted_key_names():
    pasted = """
    -- a comment's quote: ignored
    local run = p .. ':run:' .. id
    redis.call('HINCRBY', p .. ":stats", 'runs:' .. status, 1)
    local q = key('q:' .. owner)
    """
    assert key_literals(pasted) == [":run:", ":stats", "q:"]


def test_every_lua_source_is_scanned():
    assert {name.split(".")[0] for name in lua_sources()} >= SCRIPTED


@pytest.mark.parametrize("name", sorted(lua_sources()))
def test_no_lua_script_builds_a_key_name(name):
    lua = lua_sources()[name]
    assert key_literals(lua) == [], f"{name}: key names must come from Keys (KEYS/ARGV)"
    assert "mlplab" not in lua


@pytest.mark.parametrize("name", sorted(lua_sources()))
def test_lua_scripts_use_only_known_families(name):
    used = set(re.findall(r"\bF\.(\w+)", lua_sources()[name]))
    assert used <= set(Keys().families())


@pytest.mark.parametrize("prefix", ["mlplab", "t:x"])
def test_every_family_prefix_agrees_with_its_per_id_key(prefix):
    keys = Keys(prefix)
    methods = [m for m in dir(keys) if m.endswith("_prefix") and callable(getattr(keys, m))]
    assert len(methods) >= 6
    for method in methods:
        per_id = getattr(keys, method.removesuffix("_prefix"))
        assert getattr(keys, method)() + "x-1" == per_id("x-1"), method
    assert keys.run("x") + keys.events_suffix() == keys.run_events("x")
    assert keys.sweep("x") + keys.events_suffix() == keys.sweep_events("x")


def test_families_are_the_prefix_methods():
    keys = Keys("p")
    families = keys.families()
    assert families.pop("events") == keys.events_suffix()
    assert families == {name: getattr(keys, f"{name}_prefix")() for name in families}
    prefix_methods = {m.removesuffix("_prefix") for m in dir(keys) if m.endswith("_prefix")}
    assert set(families) == prefix_methods


def test_lua_families_holds_just_the_named_ones():
    keys = Keys("p")
    assert json.loads(keys.lua_families("run", "events")) == {"run": "p:run:", "events": ":events"}
    with pytest.raises(KeyError):
        keys.lua_families("runs")
