"""The plugin catalogue as the scheduler sees it: latest registration per name, tombstones,
bad records skipped, and routing only to enabled plugins."""

from switchboard.common.config import KafkaSettings
from switchboard.common.plugins import Catalogue
from switchboard.events.v1 import messages_pb2 as m


def _entry(name: str, *intents: str, version: str = "1") -> bytes:
    return m.PluginRegistration(
        name=name, version=version, intents=list(intents), request_topic=f"t.{name}"
    ).SerializeToString()


def test_the_latest_registration_counts_and_a_tombstone_removes_it() -> None:
    catalogue = Catalogue(KafkaSettings(), "t.catalog")
    catalogue.apply(b"units", _entry("units", "units.convert", version="1"))
    catalogue.apply(b"units", _entry("units", "units.convert", "units.list", version="2"))
    assert catalogue.plugins["units"].version == "2"
    assert catalogue.route("units.list", ["units"]) is not None
    catalogue.apply(b"units", None)
    assert catalogue.plugins == {} and catalogue.route("units.convert", ["units"]) is None


def test_a_registration_diverts_nothing_until_configuration_enables_it() -> None:
    catalogue = Catalogue(KafkaSettings(), "t.catalog")
    catalogue.apply(b"units", _entry("units", "units.convert"))
    catalogue.apply(b"other", _entry("other", "units.convert"))
    assert catalogue.route("units.convert", []) is None
    assert catalogue.route("units.convert", ["weather"]) is None
    chosen = catalogue.route("units.convert", ["other", "units"])
    assert chosen is not None and chosen.name == "other"  # the first enabled, in order
    assert catalogue.route("chat", ["units"]) is None


def test_unreadable_or_mislabelled_records_are_skipped() -> None:
    catalogue = Catalogue(KafkaSettings(), "t.catalog")
    catalogue.apply(b"units", b"\xff\xff not a registration")
    catalogue.apply(b"units", _entry("impostor", "units.convert"))  # key and name differ
    catalogue.apply(b"units", m.PluginRegistration(name="units", intents=["units.convert"]).SerializeToString())
    assert catalogue.plugins == {}
