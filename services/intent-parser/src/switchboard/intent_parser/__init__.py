"""Intent parser: a faust-streaming app that turns inbound messages into parsed intents."""
