"""Every link in the repository's Markdown resolves inside the repository; the README stays a map.

Links to external sites are not allowed (their text is written as plain text instead);
links to local services people open (http://127.0.0.1:…, http://localhost:…) are allowed
and not followed. A relative link must name a file or folder of the repository, and an
`#anchor` into a Markdown file must name one of its headings (GitHub's slugs). No network,
no servers: only the working tree and `git ls-files`.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[2]
README_MAX_BYTES = 10_240
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)((?:(?!\n[ \t]*\n).)+?)\1", re.DOTALL)  # not across paragraphs
# [text](target "title") and ![alt](target); link text may hold one level of brackets.
INLINE_LINK = re.compile(
    r"!?\[(?P<text>(?:[^\[\]]|\[[^\[\]]*\])*)\]"
    r"\(\s*(?P<target><[^>\n]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\)))?\s*\)"
)
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[(?P<label>[^\]]+)\]:\s*(?P<target><[^>\n]*>|\S+)", re.MULTILINE)
FULL_REFERENCE = re.compile(r"!?\[(?P<text>(?:[^\[\]]|\[[^\[\]]*\])*)\]\[(?P<label>[^\]]*)\]")
AUTOLINK = re.compile(r"<(?P<target>[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*)>")
HTML_LINK = re.compile(r"<(?:a|img|source)\b[^>]*?\b(?:href|src)\s*=\s*[\"'](?P<target>[^\"']*)[\"']", re.IGNORECASE)
BARE_URL = re.compile(r"(?<![\w/])(?:https?://|www\.)[^\s<>()\[\]`]+", re.IGNORECASE)
ATX_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(?P<text>.*?)(?:[ \t]+#+)?[ \t]*$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
HTML_ANCHOR = re.compile(r"<a\b[^>]*\b(?:name|id)\s*=\s*[\"'](?P<anchor>[^\"']+)[\"']", re.IGNORECASE)


@dataclass(frozen=True)
class Link:
    source: str  # repository path of the Markdown file
    line: int
    target: str


def _git_paths(*args: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [p for p in out.split("\0") if p]


@cache
def repository_files() -> frozenset[str]:
    """Tracked files, and new files git does not ignore (docs written but not committed yet)."""
    paths = _git_paths("--cached", "--others", "--exclude-standard")
    return frozenset(p for p in paths if (ROOT / p).is_file())


@cache
def repository_folders() -> frozenset[str]:
    folders = {""}
    for path in repository_files():
        parts = path.split("/")[:-1]
        folders.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(folders)


def markdown_files() -> list[str]:
    return sorted(p for p in repository_files() if p.lower().endswith(".md"))


def _blank(match: re.Match[str]) -> str:
    """The same text with everything but line breaks turned to spaces, so offsets keep their lines."""
    return re.sub(r"[^\n]", " ", match.group(0))


def prose(text: str) -> str:
    """The text with fenced code blocks blanked out and code spans' contents replaced by x's."""
    lines = text.split("\n")
    fence: str | None = None
    for i, line in enumerate(lines):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
            lines[i] = ""
        elif fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            lines[i] = ""
    return CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", "x", m.group(0)), "\n".join(lines))


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _clean_target(target: str) -> str:
    target = target.strip()
    if target.startswith("<") and target.endswith(">"):
        target = target[1:-1]
    return target


def links_in(path: str) -> tuple[list[Link], list[str]]:
    """Every link target in one Markdown file, and the references that have no definition."""
    return links_in_text(path, (ROOT / path).read_text(encoding="utf-8"))


def links_in_text(path: str, markdown: str) -> tuple[list[Link], list[str]]:
    text = prose(markdown)
    links: list[Link] = []
    undefined: list[str] = []

    definitions: dict[str, str] = {}
    for match in REFERENCE_DEFINITION.finditer(text):
        definitions[match.group("label").strip().lower()] = match.group("target")
        links.append(Link(path, _line_of(text, match.start()), _clean_target(match.group("target"))))
    text = REFERENCE_DEFINITION.sub(_blank, text)

    for match in INLINE_LINK.finditer(text):
        links.append(Link(path, _line_of(text, match.start()), _clean_target(match.group("target"))))
    text = INLINE_LINK.sub(_blank, text)

    for match in FULL_REFERENCE.finditer(text):
        label = (match.group("label") or match.group("text")).strip().lower()
        if label not in definitions:
            undefined.append(f"{path}:{_line_of(text, match.start())}: [{match.group('text')}][{label}] is not defined")
    text = FULL_REFERENCE.sub(_blank, text)
    # A shortcut reference ([label] alone) is a link only where its label is defined: it is
    # checked through its definition above.

    for pattern in (AUTOLINK, HTML_LINK):
        for match in pattern.finditer(text):
            links.append(Link(path, _line_of(text, match.start()), _clean_target(match.group("target"))))
        text = pattern.sub(_blank, text)

    for match in BARE_URL.finditer(text):
        links.append(Link(path, _line_of(text, match.start()), match.group(0).rstrip(".,;:!?'\"*_")))
    return links, undefined


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but - and _ removed, spaces to hyphens."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").strip().lower()
    kept = (c for c in text if c in "-_ " or c.isalnum() or unicodedata.category(c).startswith("M"))
    return "".join(kept).replace(" ", "-")


def _is_paragraph_line(line: str) -> bool:
    return bool(line.strip()) and not ATX_HEADING.match(line) and not line.lstrip().startswith(("|", "-", "*", ">"))


@cache
def anchors(path: str) -> frozenset[str]:
    """The heading anchors of one Markdown file, with GitHub's -1, -2 … for repeated headings."""
    raw_text = (ROOT / path).read_text(encoding="utf-8")
    raw = raw_text.split("\n")
    lines = prose(raw_text).split("\n")  # same lines, code blanked: no headings inside code blocks
    headings: list[str] = []
    for i, line in enumerate(lines):
        if ATX_HEADING.match(line):
            heading = ATX_HEADING.match(raw[i])
            headings.append(heading.group("text") if heading else "")
        elif (
            i > 0
            and SETEXT_UNDERLINE.match(line)
            and _is_paragraph_line(lines[i - 1])
            and (i == 1 or not _is_paragraph_line(lines[i - 2]))
        ):
            headings.append(raw[i - 1].strip())
    found: set[str] = set()
    seen: Counter[str] = Counter()
    for heading in headings:
        base = slug(heading)
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    found.update(m.group("anchor") for m in HTML_ANCHOR.finditer(raw_text))
    return frozenset(found)


def problem(link: Link) -> str | None:
    """Why a link does not resolve inside the repository, or None when it does."""
    target = link.target
    where = f"{link.source}:{link.line}: {target or '(empty)'}"
    if not target:
        return f"{where}: empty link"
    parts = urlsplit(target)
    if target.lower().startswith("www."):
        return f"{where}: external link (write the name as plain text)"
    if parts.scheme:
        if parts.scheme.lower() in {"http", "https"} and (parts.hostname or "") in LOCAL_HOSTS:
            return None  # a local service people open: allowed, not followed
        return f"{where}: external link (write the name as plain text)"
    if parts.netloc:
        return f"{where}: external link (write the name as plain text)"

    source_dir = Path(link.source).parent
    relative = unquote(parts.path)
    if not relative:
        resolved = Path(link.source)
    elif relative.startswith("/"):
        resolved = Path(relative.lstrip("/"))
    else:
        resolved = source_dir / relative
    normal = Path(*[p for p in resolved.parts if p != "."])
    stack: list[str] = []
    for part in normal.parts:
        if part == "..":
            if not stack:
                return f"{where}: points outside the repository"
            stack.pop()
        else:
            stack.append(part)
    repo_path = "/".join(stack)
    is_file = repo_path in repository_files()
    if not is_file and repo_path.rstrip("/") not in repository_folders():
        return f"{where}: no such file or folder in the repository ({repo_path})"
    if parts.fragment and is_file and repo_path.lower().endswith(".md"):
        anchor = unquote(parts.fragment)
        if anchor not in anchors(repo_path):
            return f"{where}: no heading #{anchor} in {repo_path}"
    return None


def test_markdown_links_resolve_inside_the_repository() -> None:
    files = markdown_files()
    assert "README.md" in files
    problems: list[str] = []
    for path in files:
        links, undefined = links_in(path)
        problems.extend(undefined)
        problems.extend(p for p in map(problem, links) if p)
    assert not problems, "links that do not resolve inside the repository:\n" + "\n".join(problems)


def test_readme_is_a_map() -> None:
    size = (ROOT / "README.md").stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail into docs/ (limit {README_MAX_BYTES})"
    assert re.search(r"^make test\b", (ROOT / "README.md").read_text(encoding="utf-8"), re.MULTILINE), (
        "README.md must show `make test` as the test command (.ci/run follows it)"
    )


def test_the_checker_sees_what_it_should() -> None:
    """The parser itself: code is not prose, local services are allowed, anchors follow GitHub."""
    assert slug("Gateway (`scripts/bench_gateway.py`)") == "gateway-scriptsbench_gatewaypy"
    assert slug("What `make up` starts") == "what-make-up-starts"
    assert slug("Settings (`SB_PARSER_…`)") == "settings-sb_parser_"
    assert slug("Not done yet (issue 22, open)") == "not-done-yet-issue-22-open"
    text = (
        "see [a](b.md#c), `[x](nowhere)`, <https://example.org>, [d][e] and http://127.0.0.1:19090.\n"
        "```\n[y](in-a-code-block.md)\n```\n\n[e]: https://example.com/e\n"
    )
    links, undefined = links_in_text("README.md", text)
    assert [(link.line, link.target) for link in links] == [
        (6, "https://example.com/e"),
        (1, "b.md#c"),
        (1, "https://example.org"),
        (1, "http://127.0.0.1:19090"),
    ]
    assert not undefined
    assert links_in_text("README.md", "[d][nowhere]\n")[1] == ["README.md:1: [d][nowhere] is not defined"]
    assert problem(Link("README.md", 1, "http://127.0.0.1:19090/alerts")) is None
    assert problem(Link("README.md", 1, "http://localhost:8080")) is None
    assert problem(Link("README.md", 1, "https://example.org")) is not None
    assert problem(Link("README.md", 1, "../outside.md")) is not None
    assert problem(Link("README.md", 1, "no/such/file.md")) is not None
