"""Every option and sub-command of every offline tool's command line has help text, and --help renders."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from helpers.offline_tools import import_tool, tool_files

TOOLS = tool_files()


def undocumented(parser: argparse.ArgumentParser, where: str) -> list[str]:
    """The options, positionals and sub-commands of ``parser`` (sub-commands' own included) without help."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = f"{where} {'/'.join(action.option_strings) or action.dest}"
        if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
            missing.append(name)
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for command, sub in action.choices.items():
                if not (helps.get(command) or "").strip():
                    missing.append(f"{where} {command} (sub-command)")
                missing += undocumented(sub, f"{where} {command}")
    return missing


def all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and its sub-commands' parsers, depth first."""
    subs = [sub for a in parser._actions if isinstance(a, argparse._SubParsersAction) for sub in a.choices.values()]
    return [parser, *(p for sub in subs for p in all_parsers(sub))]


def test_the_tools_are_found():
    names = {p.as_posix() for p in TOOLS}
    assert {"realtime/extract.py", "dmd_lite/train.py", "export/__main__.py", "calibration/__main__.py",
            "bench/model.py", "scripts/make_demo_clip.py"} <= names
    assert "main.py" not in names


@pytest.mark.parametrize("path", TOOLS, ids=[p.as_posix() for p in TOOLS])
def test_every_option_has_help(path: Path):
    parser = import_tool(path).parser()
    assert undocumented(parser, path.as_posix()) == []
    for p in all_parsers(parser):
        assert "usage:" in p.format_help()  # every %(default)s and the like expands
