"""Order independence: any order, duplicates, or racing workers give the same partition of identifiers."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.template import Resolver as StackResolver
from loyalty.errors import TransientError
from loyalty.identity.resolve import Resolver
from loyalty.identity.store import IdentityStore
from loyalty.models.events import ChannelEvent
from loyalty.models.identifiers import Identifier
from tests.support.identity import attributed_to, event, ident
from tests.support.races import race

UNIVERSE = (
    [("email", f"u{i}@x.com") for i in range(4)]
    + [("phone", f"60000000{i}") for i in range(3)]
    + [("device_id", f"dev-{i}") for i in range(3)]
)
_RUN = itertools.count()


def components(groups: Sequence[Sequence[tuple[str, str]]]) -> set[frozenset[tuple[str, str]]]:
    """Connected components of identifiers that appear together (the expected partition)."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x: tuple[str, str]) -> tuple[str, str]:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for group in groups:
        for other in group[1:]:
            parent[find(other)] = find(group[0])
        find(group[0])
    out: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for x in parent:
        out.setdefault(find(x), set()).add(x)
    return {frozenset(v) for v in out.values()}


def observed(
    store: IdentityStore, idents: dict[Identifier, tuple[str, str]]
) -> set[frozenset[tuple[str, str]]]:
    owners = store.owners(list(idents))
    assert set(owners) == set(idents), "every identifier seen belongs to a customer"
    out: dict[str, set[tuple[str, str]]] = {}
    for identifier, owner in owners.items():
        out.setdefault(store.resolve(owner), set()).add(idents[identifier])
    return {frozenset(v) for v in out.values()}


def _resolve_until_done(ev: ChannelEvent) -> None:
    """What SQS does: redeliver a message whose processing failed transiently."""
    for _ in range(10):
        try:
            Resolver().resolve(ev)
            return
        except TransientError:
            continue
    raise AssertionError(f"event {ev.event_id} never resolved")


groups_strategy = st.lists(
    st.lists(st.sampled_from(UNIVERSE), min_size=1, max_size=3, unique=True), min_size=1, max_size=7
)


def assert_attributed_once_with_latest_names(
    store: IdentityStore, events: list[ChannelEvent], idents: list[Identifier]
) -> None:
    """Each event is attributed to (a redirect of) the customer of its identifiers, once on its
    timeline, and each golden profile holds the most recent name its events stated."""
    owners = store.owners(idents)
    for ev in events:
        attributed = attributed_to(ev.event_id)
        assert store.resolve(attributed) == store.resolve(owners[ev.identifiers[0]])
    survivors = {store.resolve(c) for c in owners.values()}
    entries = []
    for cid in survivors:
        prof = store.profile(cid)
        assert prof is not None
        assert prof["status"] == "active"
        entries += store.timeline([cid, *prof.get("absorbed_ids", [])], 100)
    assert sorted(e["event_id"] for e in entries) == sorted(e.event_id for e in events)
    # and each golden profile holds the most recent name its events stated, whatever the order
    for cid in survivors:
        mine = [ev for ev in events if store.resolve(owners[ev.identifiers[0]]) == cid]
        latest = max(mine, key=lambda ev: ev.occurred_at)
        assert store.profile(cid)["first_name"] == latest.payload.first_name  # type: ignore[index, union-attr]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(groups=groups_strategy, data=st.data())
def test_any_order_with_duplicates_gives_the_same_partition(
    stack: StackResolver, groups: list[list[tuple[str, str]]], data: st.DataObject
) -> None:
    # Given events over a small identifier universe (fresh values per example: one table for all)
    run = next(_RUN)

    def scoped(kind: str, value: str) -> tuple[str, str]:
        return (kind, f"r{run}{value}" if kind != "phone" else f"6{run % 10}{value[2:]}{run // 10 % 10}")

    scoped_groups = [[scoped(k, v) for k, v in g] for g in groups]
    names = data.draw(
        st.lists(st.sampled_from(["Ana", "Ana María", "Anita"]), min_size=len(groups), max_size=len(groups))
    )
    events = [
        event(*g, minutes=i, profile={"first_name": n})
        for i, (g, n) in enumerate(zip(scoped_groups, names, strict=True))
    ]
    # When they are delivered in a random order, some twice
    deliveries = data.draw(st.permutations(events + data.draw(st.lists(st.sampled_from(events), max_size=3))))
    for ev in deliveries:
        _resolve_until_done(ev)
    # Then identifiers are partitioned into customers exactly as their co-occurrence says
    store = IdentityStore()
    idents = {ident(k, v): ident(k, v).key for g in scoped_groups for k, v in g}
    got = observed(store, {i: (i.type.value, i.value) for i in idents})
    expected = {
        frozenset((ident(k, v).type.value, ident(k, v).value) for k, v in comp)
        for comp in components(scoped_groups)
    }
    assert got == expected
    assert_attributed_once_with_latest_names(store, events, list(idents))


@pytest.fixture
def atomic_requests(stack: StackResolver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make each moto request atomic, as each DynamoDB request is (moto in process is not).

    Racing workers still interleave BETWEEN requests, which is where real races happen.
    """
    from loyalty.store import table as table_mod

    lock = threading.Lock()
    original = table_mod.Table._call

    def serialised(self: table_mod.Table, op: str, **kwargs: object) -> object:
        with lock:
            return original(self, op, **kwargs)

    monkeypatch.setattr(table_mod.Table, "_call", serialised)


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The template's resources on moto as a real HTTP server (as the local stack runs it).

    The devstack's emulator patches make each request atomic, as DynamoDB's are; the functions
    reach the server through ``AWS_ENDPOINT_URL`` exactly as they would reach AWS.
    """
    from moto.server import ThreadedMotoServer

    from devstack import moto_patches
    from devstack.provision import provision
    from loyalty import aws
    from loyalty.settings import get_settings
    from tests.conftest import TEMPLATE, _all_function_env

    moto_patches.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        aws.reset()
        resolver = provision(endpoint_url=url, template=TEMPLATE)
        for key, value in _all_function_env(resolver).items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        yield url
    finally:
        server.stop()
        aws.reset()
        get_settings.cache_clear()


@pytest.mark.parametrize("backend", ["moto_server", "atomic_requests"])
def test_racing_workers_merging_overlapping_customers_converge(
    request: pytest.FixtureRequest, backend: str
) -> None:
    request.getfixturevalue(backend)
    # Given four customers, one per identifier
    seeds = [("email", "a@x.com"), ("email", "b@x.com"), ("phone", "611111111"), ("device_id", "dev-x")]
    for i, seed in enumerate(seeds):
        _resolve_until_done(event(seed, minutes=i))
    # When eight workers race events that link them pairwise (each event delivered twice)
    links = [event(seeds[i], seeds[(i + 1) % 4], minutes=10 + i) for i in range(4)]
    deliveries = links + links
    results = race(len(deliveries), lambda i: _resolve_until_done(deliveries[i]))
    assert [r for r in results if isinstance(r, BaseException)] == []
    # Then there is one customer, every absorbed id redirects to it, and each id was absorbed once
    store = IdentityStore()
    owners = store.owners([ident(*s) for s in seeds])
    survivors = {store.resolve(c) for c in owners.values()}
    assert len(survivors) == 1
    (survivor,) = survivors
    prof = store.profile(survivor)
    assert prof is not None
    assert (
        sorted(prof["absorbed_ids"])
        == sorted(
            {store.profile(c)["customer_id"] for c in owners.values()} - {survivor}  # type: ignore[index]
        )
        or len(prof["absorbed_ids"]) == 3
    )
    assert len(prof["absorbed_ids"]) == len(set(prof["absorbed_ids"])) == 3
    assert {store.resolve(attributed_to(ev.event_id)) for ev in links} == {survivor}
    assert len(store.contacts(survivor)) == 4


@pytest.mark.usefixtures("atomic_requests")
@pytest.mark.parametrize("rounds", [3])
def test_racing_duplicates_of_one_new_customer_create_it_once(stack: StackResolver, rounds: int) -> None:
    for r in range(rounds):
        ev = event(("email", f"dup{r}@x.com"), ("phone", f"62222222{r}"))
        barrier = threading.Barrier(4)

        def work(e: ChannelEvent = ev, b: threading.Barrier = barrier) -> None:
            b.wait()
            _resolve_until_done(e)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        store = IdentityStore()
        owners = store.owners(list(ev.identifiers))
        assert len(set(owners.values())) == 1
