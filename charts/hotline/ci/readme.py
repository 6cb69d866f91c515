#!/usr/bin/env python3
"""Writes charts/hotline/README.md from Chart.yaml, ci/README.md.tmpl and the `# --`
comments of values.yaml, as helm-docs would (helm-docs is a Go binary; this needs
only PyYAML). check.py fails when the committed README differs from what this writes.

A value is documented by a comment block directly above its key whose first line
starts with `# --`; the lines after it continue the description. Lines above the
`# --` line (notes for people editing values.yaml) are not part of it. Every
documented key is a row of the table, in the file's order; a documented key whose
children are documented too is a heading row for them, without a default.

Usage: python3 charts/hotline/ci/readme.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).with_name("README.md.tmpl")
README = CHART / "README.md"


@dataclass
class Node:
    path: str
    value: object
    description: str | None
    children: list["Node"] = field(default_factory=list)

    def documented_below(self) -> bool:
        return any(child.description is not None or child.documented_below() for child in self.children)


def _description(lines: list[str], key_line: int) -> str | None:
    """The `# --` description in the comment block directly above line `key_line`."""
    block: list[str] = []
    above = key_line - 1
    while above >= 0 and lines[above].strip().startswith("#"):
        block.insert(0, lines[above].strip())
        above -= 1
    starts = [i for i, line in enumerate(block) if line.startswith("# --")]
    if not starts:
        return None
    first = block[starts[-1]][len("# --"):].strip()
    rest = [line[1:].strip() for line in block[starts[-1] + 1:]]
    return " ".join(part for part in [first, *rest] if part)


def parse(path: Path = CHART / "values.yaml") -> list[Node]:
    """values.yaml as a tree of mapping keys with their descriptions (lists are leaves)."""
    text = path.read_text()
    lines = text.splitlines()
    values = yaml.safe_load(text)
    root = yaml.compose(text)

    def walk(mapping: yaml.MappingNode, data: dict, prefix: str) -> list[Node]:
        nodes = []
        for key_node, value_node in mapping.value:
            key = key_node.value
            node = Node(f"{prefix}{key}", data[key], _description(lines, key_node.start_mark.line))
            if isinstance(value_node, yaml.MappingNode):
                node.children = walk(value_node, data[key], f"{node.path}.")
            nodes.append(node)
        return nodes

    return walk(root, values, "")


def undocumented(nodes: list[Node]) -> list[str]:
    """Keys with no `# --` description on themselves or on each of their descendants."""
    missing: list[str] = []
    for node in nodes:
        if node.description is not None:
            continue
        if not node.children:
            missing.append(node.path)
        else:
            missing += undocumented(node.children)
    return missing


def _type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    return "object"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def rows(nodes: list[Node]) -> list[str]:
    out: list[str] = []
    for node in nodes:
        if node.description is not None:
            heading = node.documented_below()
            default = "" if heading else f"`{_cell(json.dumps(node.value, ensure_ascii=False, separators=(', ', ': ')))}`"
            out.append(f"| `{node.path}` | {_type(node.value)} | {default} | {_cell(node.description)} |")
        out += rows(node.children)
    return out


def render() -> str:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    table = "\n".join(["| Key | Type | Default | Description |", "| --- | --- | --- | --- |", *rows(parse())])
    text = TEMPLATE.read_text()
    for name, value in {
        "name": chart["name"],
        "description": " ".join(chart.get("description", "").split()),
        "version": chart["version"],
        "appVersion": chart.get("appVersion", ""),
        "kubeVersion": chart.get("kubeVersion", ""),
        "values": table,
    }.items():
        text = text.replace("{{ " + name + " }}", str(value))
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is not up to date")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = README.read_text() if README.exists() else ""
        if current != text:
            print(f"{README} is out of date: run {Path(sys.executable).name} {Path(__file__)}", file=sys.stderr)
            return 1
        return 0
    README.write_text(text)
    print(f"wrote {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
