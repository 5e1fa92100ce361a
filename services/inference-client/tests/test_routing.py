import pytest

from switchboard.inference_client import routing
from switchboard.inference_client.config import Route, Target

STABLE = Target(model="chat", version="1", weight=90)
CANARY = Target(model="chat", version="2", weight=10)
SPARE = Target(model="spare")


def test_profiles_without_a_route_use_general() -> None:
    routes = {"general": Route(targets=[Target(model="g")]), "code": Route(targets=[Target(model="c")])}
    assert routing.route_for("code", routes).targets[0].model == "c"
    assert routing.route_for("creative", routes).targets[0].model == "g"
    with pytest.raises(LookupError, match="no 'general' route"):
        routing.route_for("code", {})


def test_the_canary_gets_its_weight_of_conversations() -> None:
    route = Route(targets=[STABLE, CANARY], fallback=[SPARE])
    firsts = [routing.chain(route, f"conversation-{i}")[0] for i in range(20_000)]
    assert abs(firsts.count(CANARY) / len(firsts) - 0.10) < 0.01


def test_a_conversation_stays_on_its_side_and_falls_back_through_the_rest() -> None:
    route = Route(targets=[STABLE, CANARY], fallback=[SPARE])
    chains = {tuple(routing.chain(route, "c-42")) for _ in range(5)}
    assert len(chains) == 1
    (chain,) = chains
    assert set(chain[:2]) == {STABLE, CANARY} and chain[2] == SPARE


def test_a_zero_weight_target_is_never_first_but_still_a_fallback() -> None:
    drained = Target(model="chat", version="1", weight=0)
    route = Route(targets=[drained, CANARY])
    assert all(routing.chain(route, f"k{i}") == [CANARY, drained] for i in range(200))
