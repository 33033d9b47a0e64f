"""The access policy in one place (app/access): every GraphQL root field and every Litestar
route is covered, with `health` (and the static, probe and sign-in routes) the only open ones;
the rule itself, the Host allow-list and the cross-site check, case by case."""

from __future__ import annotations

import uuid

import pytest

from app.access import hosts, origin
from app.access import routes as access_routes
from app.access.graphql import ROOT_FIELDS, action_of, root_fields
from app.access.policy import AccessDenied, authorise
from app.access.principal import Action, KeyRef, Principal
from app.settings import load_settings

OPEN_ROUTES = {"/healthz", "/readyz", "/favicon.ico", "/static/{file_path}", "/login", "/logout"}


def _root_fields() -> list[tuple[str, str]]:
    from app.gql.schema import schema

    gs = schema._schema
    out = []
    for operation, root in (("query", gs.query_type), ("mutation", gs.mutation_type),
                            ("subscription", gs.subscription_type)):
        out += [(operation, name) for name in root.fields]
    return out


def test_every_root_field_is_covered_and_only_health_is_open() -> None:
    fields = _root_fields()
    assert len(fields) > 15  # the schema really was enumerated
    uncovered = [f for f in fields if action_of(*f) is None]
    assert uncovered == []
    assert {f for f in fields if action_of(*f) is Action.OPEN} == {("query", "health")}
    # introspection and __typename are reads, never open
    assert {action_of("query", n) for n in ("__schema", "__type", "__typename")} == {Action.READ}
    # the table names only fields that exist (a renamed field would silently take the default)
    assert set(ROOT_FIELDS) <= set(fields)
    # a mutation nobody listed is refused, whoever calls
    assert action_of("mutation", "dropEverything") is None
    with pytest.raises(AccessDenied, match="not covered"):
        authorise(Principal(key=KeyRef(uuid.uuid4(), "k"), loopback=True, keys_exist=True), None)


def test_root_fields_are_found_through_fragments() -> None:
    from graphql import parse

    doc = parse("""
        query Q { ...A health { version } ... on Query { machines { id } } }
        fragment A on Query { projects { id } ...B }
        fragment B on Query { __schema { queryType { name } } }
        mutation M { ingestEvents(batch: {}) { accepted } }""")
    assert root_fields(doc, "Q") == ("query", {"health", "machines", "projects", "__schema"})
    assert root_fields(doc, "M") == ("mutation", {"ingestEvents"})


def test_every_route_is_covered() -> None:
    from app.asgi import create_app

    app = create_app(load_settings())
    paths = {route.path_format for route in app.routes}
    assert {"/", "/sessions", "/usage.csv", "/live/overview", "/graphql"} <= paths
    assert {p for p in paths if access_routes.action_of(p) is Action.OPEN} == OPEN_ROUTES
    assert set(access_routes.ROUTES) <= paths
    # the guard is the app's, so it applies to every handler, present and future
    assert access_routes.guard in app.guards


@pytest.mark.parametrize("loopback,keys_exist,key,read,ingest", [
    (True, False, False, True, True),     # a fresh local install: open
    (True, True, False, True, False),     # a key exists: ingest needs one
    (True, True, True, True, True),
    (False, False, False, False, False),  # beyond loopback: nothing without a key...
    (False, True, True, True, True),      # ...everything with one
])
def test_the_rule(loopback: bool, keys_exist: bool, key: bool, read: bool, ingest: bool) -> None:
    p = Principal(key=KeyRef(uuid.uuid4(), "k") if key else None, loopback=loopback,
                  keys_exist=keys_exist)
    assert (p.may(Action.OPEN), p.may(Action.READ), p.may(Action.INGEST)) == (True, read, ingest)


@pytest.mark.parametrize("header,name", [
    ("127.0.0.1:3200", "127.0.0.1"), ("[::1]:3200", "[::1]"), ("LocalHost", "localhost"),
    ("devlog.example.:80", "devlog.example"), ("::1", "[::1]"),
    ("attacker.example", "attacker.example"),
])
def test_host_names(header: str, name: str) -> None:
    assert hosts.hostname(header) == name


def test_host_allow_list_modes() -> None:
    local = hosts.policy_for(load_settings(host="127.0.0.1"))
    assert all(local.allows(h) for h in ("localhost:3200", "127.0.0.1:3200", "[::1]:3200", None))
    assert not local.allows("attacker.example:3200")
    assert not local.allows("localhost.attacker.example")
    more = hosts.policy_for(load_settings(host="127.0.0.1",
                                          allowed_hosts="devlog.test, *.corp.example"))
    assert more.allows("devlog.test:3200") and more.allows("a.b.corp.example")
    assert not more.allows("corp.example") and not more.allows("evilcorp.example")
    listed = hosts.policy_for(load_settings(host="::1", allowed_hosts=["devlog.test"]))  # TOML list
    assert listed.allows("[::1]:3200") and listed.allows("devlog.test")
    # beyond loopback every request but health needs a key: any name, unless names are given
    team = hosts.policy_for(load_settings(host="0.0.0.0"))
    assert team.allows("devlog.team.internal:3200") and team.allows("10.1.2.3:3200")
    strict = hosts.policy_for(load_settings(host="0.0.0.0", allowed_hosts="devlog.team.internal"))
    assert strict.allows("devlog.team.internal:3200") and strict.allows("127.0.0.1:3200")
    assert not strict.allows("attacker.example:3200") and not strict.allows("0.0.0.0:3200")
    assert hosts.policy_for(load_settings(host="127.0.0.1", allowed_hosts="*")).allows("anything")


@pytest.mark.parametrize("headers,refused", [
    ({}, False),                                            # the collector, curl
    ({b"sec-fetch-site": b"same-origin"}, False),
    ({b"sec-fetch-site": b"none"}, False),                 # typed or bookmarked
    ({b"sec-fetch-site": b"cross-site"}, True),
    ({b"sec-fetch-site": b"same-site"}, True),             # another port of localhost
    ({b"origin": b"http://127.0.0.1:3200", b"host": b"127.0.0.1:3200"}, False),
    ({b"origin": b"http://evil.example", b"host": b"127.0.0.1:3200"}, True),
    ({b"origin": b"http://127.0.0.1:8080", b"host": b"127.0.0.1:3200"}, True),
    ({b"origin": b"null", b"host": b"127.0.0.1:3200"}, True),
    # Sec-Fetch-Site wins over a matching Origin
    ({b"sec-fetch-site": b"cross-site", b"origin": b"http://h:1", b"host": b"h:1"}, True),
])
def test_cross_site(headers: dict[bytes, bytes], refused: bool) -> None:
    assert origin.cross_site(headers) is refused
