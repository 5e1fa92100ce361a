from switchboard.common.text import CJK, control_characters, has_cjk, refusal, scrub
from switchboard.events.v1 import messages_pb2 as m


def test_control_characters_are_named_and_tabs_and_line_breaks_are_not() -> None:
    assert control_characters("a\x00b\x1bc\x00\x7f") == ["U+0000", "U+001B", "U+007F"]
    assert control_characters("line one\nline two\r\n\tindented, 你好 🙂") == []
    assert refusal("plain text\n") is None
    why = refusal("bad\x00")
    assert why is not None and "U+0000" in why


def test_scrub_removes_nul_from_every_string_of_a_payload() -> None:
    intent = m.ParsedIntent(
        message=m.InboundMessage(text="remind\x00 me", metadata={"k\x00": "v\x00"}),
        intent="reminder.create",
        slots=[m.Slot(name="task", value="call\x00 mom")],
        context=[m.ChatTurn(content="earlier\x00")],
    )
    scrub(intent)
    assert intent.message.text == "remind me" and dict(intent.message.metadata) == {"k": "v"}
    assert intent.slots[0].value == "call mom" and intent.context[0].content == "earlier"
    assert "\x00" not in str(intent)


def test_chinese_characters_are_told_from_other_scripts() -> None:
    assert has_cjk("明天9am") and has_cjk("兩") and has_cjk("\uf900")  # a compatibility ideograph
    assert not has_cjk("hello, 123") and not has_cjk("こんにちは") and not has_cjk("안녕")
    assert CJK.findall("明天 9am 提醒我 call Bob") == ["明", "天", "提", "醒", "我"]
