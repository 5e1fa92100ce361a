"""The parser the tests share: its classifier trained once a session (on the train split and
the public rows, about 12 s), not once a module."""

from pathlib import Path

import pytest

from switchboard.intent_parser.handlers import Parser

SERVICE = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def trained_parser() -> Parser:
    return Parser.from_config(SERVICE / "config", SERVICE / "data", ("train",))


@pytest.fixture(scope="session")
def parser(trained_parser: Parser) -> Parser:
    """The shared parser (test_times.py has a ``parser`` of its own: a TimeParser)."""
    return trained_parser
