"""Edits of YAML files as text, so their comments and layout stay as the user wrote them.

Each function finds a place by structure (block list items, ``---`` documents, a mapping's
entries by indentation), checks what it found by parsing it, and returns new text; nothing is
written here. PyYAML would lose every comment on a round trip.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

_ITEM = re.compile(r"^( *)-(?: |$)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _trim_end(lines: list[str], start: int, end: int) -> int:
    """``end`` moved back over trailing blank and comment lines (they belong to what follows)."""
    while end > start + 1 and not _is_content(lines[end - 1]):
        end -= 1
    return end


@dataclass(frozen=True)
class Item:
    """A block sequence item: lines [start, end), the list's last line at ``list_end``."""

    start: int
    end: int
    list_end: int
    indent: int


def _block_end(lines: list[str], start: int, indent: int, sibling: bool) -> int:
    """First line after the block opened at ``start``: content indented at most ``indent``
    (for an item, a sibling item at the same indent also ends it unless ``sibling``)."""
    for number in range(start + 1, len(lines)):
        line = lines[number]
        if not _is_content(line):
            continue
        if _indent(line) < indent:
            return number
        if _indent(line) == indent and (not sibling or not _ITEM.match(line)):
            return number
    return len(lines)


def items(lines: list[str]) -> list[Item]:
    """Every block sequence item in the text, outermost first."""
    found = []
    for number, line in enumerate(lines):
        match = _ITEM.match(line)
        if match is None:
            continue
        indent = len(match.group(1))
        end = _trim_end(lines, number, _block_end(lines, number, indent, sibling=False))
        list_end = _trim_end(lines, number, _block_end(lines, number, indent, sibling=True))
        found.append(Item(number, end, list_end, indent))
    return found


def item_value(lines: list[str], item: Item) -> Any:
    """The item parsed on its own (None when it does not parse alone)."""
    block = lines[item.start : item.end]
    first = block[0]
    block = [first[: item.indent] + " " + first[item.indent + 1 :], *block[1:]]
    try:
        return yaml.safe_load(textwrap.dedent("\n".join(block)))
    except yaml.YAMLError:
        return None


def duplicate_items(
    text: str, wanted: Callable[[Any], bool], transform: Callable[[str], str]
) -> tuple[str, int]:
    """Copy each list item ``wanted`` accepts (transformed) to the end of its list."""
    lines = text.split("\n")
    chosen: list[Item] = []
    for item in items(lines):
        inside = any(c.start <= item.start < c.end for c in chosen)
        if not inside and wanted(item_value(lines, item)):
            chosen.append(item)
    # Bottom-up, so earlier line numbers stay valid.
    for item in sorted(chosen, key=lambda i: i.list_end, reverse=True):
        copy = transform("\n".join(lines[item.start : item.end])).split("\n")
        lines[item.list_end : item.list_end] = copy
    return "\n".join(lines), len(chosen)


def documents(text: str) -> list[str]:
    """The ``---``-separated documents of a file, as text."""
    return re.split(r"(?m)^---[ \t]*\n", text)


def duplicate_documents(
    text: str, wanted: Callable[[Any], bool], transform: Callable[[str], str]
) -> tuple[str, int]:
    """Append a transformed copy of each document ``wanted`` accepts (leading comments, which
    describe the file or the first document, are not copied)."""
    copies = []
    for document in documents(text):
        try:
            value = yaml.safe_load(document)
        except yaml.YAMLError:
            continue
        if wanted(value):
            lines = document.split("\n")
            first = next((i for i, line in enumerate(lines) if _is_content(line)), 0)
            copies.append(transform("\n".join(lines[first:])).rstrip("\n") + "\n")
    if not copies:
        return text, 0
    return text.rstrip("\n") + "\n" + "".join(f"---\n{copy}" for copy in copies), len(copies)


def mapping_entry(lines: list[str], parent: str, key: str) -> tuple[int, int] | None:
    """Lines [start, end) of ``key:`` directly under the top-level ``parent:`` mapping."""
    top = next((i for i, line in enumerate(lines) if line.rstrip() == f"{parent}:"), None)
    if top is None:
        return None
    end_of_parent = _block_end(lines, top, 0, sibling=False)
    children = [i for i in range(top + 1, end_of_parent) if _is_content(lines[i])]
    if not children:
        return None
    indent = _indent(lines[children[0]])
    for number in children:
        if _indent(lines[number]) == indent and lines[number].strip() == f"{key}:":
            return number, _trim_end(lines, number, _block_end(lines, number, indent, False))
    return None


def append_to_mapping(text: str, parent: str, block: str) -> str:
    """``block`` added as the last entry of the top-level ``parent:`` mapping."""
    lines = text.split("\n")
    top = next((i for i, line in enumerate(lines) if line.rstrip() == f"{parent}:"), None)
    if top is None:
        raise ValueError(f"no top-level {parent}:")
    end = _trim_end(lines, top, _block_end(lines, top, 0, sibling=False))
    lines[end:end] = ["", *block.rstrip("\n").split("\n")]
    return "\n".join(lines)


def _key_line(lines: list[str], key: str, start: int = 0, end: int | None = None) -> int | None:
    """The first line in [start, end) that is ``key:`` or ``key: []`` (any indentation)."""
    for number in range(start, len(lines) if end is None else end):
        if lines[number].strip() in (f"{key}:", f"{key}: []"):
            return number
    return None


def append_to_list(text: str, key: str, item: str) -> str:
    """``item`` (written at indentation 0) added as the last item of the first block list
    under ``key:``; an empty ``key: []`` becomes a block list holding it."""
    lines = text.split("\n")
    at = _key_line(lines, key)
    if at is None:
        raise ValueError(f"no {key}: list")
    key_indent = _indent(lines[at])
    if lines[at].strip().endswith("[]"):
        lines[at] = " " * key_indent + f"{key}:"
        end, item_indent = at + 1, key_indent + 2
    else:
        end = _trim_end(lines, at, _block_end(lines, at, key_indent, sibling=False))
        first = next((i for i in range(at + 1, end) if _is_content(lines[i])), None)
        item_indent = _indent(lines[first]) if first is not None else key_indent + 2
    lines[end:end] = [" " * item_indent + line if line else line for line in item.split("\n")]
    return "\n".join(lines)


def remove_items(text: str, wanted: Callable[[Any], bool]) -> tuple[str, int]:
    """Remove each list item ``wanted`` accepts; a list left with no item becomes ``key: []``."""
    lines = text.split("\n")
    chosen: list[Item] = []
    for item in items(lines):
        inside = any(c.start <= item.start < c.end for c in chosen)
        if not inside and wanted(item_value(lines, item)):
            chosen.append(item)
    for item in sorted(chosen, key=lambda i: i.start, reverse=True):
        parent = next(
            (
                i
                for i in range(item.start - 1, -1, -1)
                if _is_content(lines[i]) and _indent(lines[i]) < item.indent
            ),
            None,
        )
        del lines[item.start : item.end]
        if parent is None or not lines[parent].rstrip().endswith(":"):
            continue
        end = _block_end(lines, parent, _indent(lines[parent]), sibling=False)
        if not any(_ITEM.match(lines[i]) for i in range(parent + 1, end)):
            # Comments that were inside the list now describe it: they go above its key.
            indent = " " * _indent(lines[parent])
            numbers = [i for i in range(parent + 1, end) if lines[i].strip()]
            comments = [indent + lines[i].strip() for i in numbers]
            for number in reversed(numbers):
                del lines[number]
            lines[parent] = lines[parent].rstrip() + " []"
            lines[parent:parent] = comments
    return "\n".join(lines), len(chosen)


def remove_documents(text: str, wanted: Callable[[Any], bool]) -> tuple[str, int]:
    """Remove each ``---`` document ``wanted`` accepts; the file's leading comments stay."""
    kept, removed = [], 0
    header: list[str] = []
    for number, document in enumerate(documents(text)):
        try:
            value = yaml.safe_load(document)
        except yaml.YAMLError:
            value = None
        if value is not None and wanted(value):
            removed += 1
            if number == 0:
                lines = document.split("\n")
                first = next((i for i, line in enumerate(lines) if _is_content(line)), 0)
                header = lines[:first]
            continue
        kept.append(document)
    if not removed:
        return text, 0
    body = "---\n".join(kept)
    if header and kept:
        body = "\n".join(header) + "\n" + body
    elif header:
        body = "\n".join(header) + "\n"
    return body, removed


def block_of(lines: list[str], start: int, end: int, key: str) -> tuple[int, int] | None:
    """Lines [a, b) of the entry ``key:`` (or ``key: value``) nested directly in the block
    [start, end), at the indentation of that block's first content line."""
    children = [i for i in range(start, end) if _is_content(lines[i])]
    if not children:
        return None
    indent = _indent(lines[children[0]])
    for number in children:
        stripped = lines[number].strip()
        if _indent(lines[number]) == indent and stripped.split(":", 1)[0] == key:
            return number, _trim_end(lines, number, _block_end(lines, number, indent, False))
    return None
