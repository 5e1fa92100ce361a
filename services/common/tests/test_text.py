from switchboard.common.text import control_characters, refusal


def test_control_characters_are_named_and_tabs_and_line_breaks_are_not() -> None:
    assert control_characters("a\x00b\x1bc\x00\x7f") == ["U+0000", "U+001B", "U+007F"]
    assert control_characters("line one\nline two\r\n\tindented, 你好 🙂") == []
    assert refusal("plain text\n") is None
    why = refusal("bad\x00")
    assert why is not None and "U+0000" in why
