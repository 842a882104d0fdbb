"""OperationStore conformance: leases on unfinished operations (claim, renew, expire, release).

Time is driven by the fake clock: a lease taken at ``now`` for ``s`` seconds holds while
the clock is before ``now + s`` and is free once it is past.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

from store_records import T0, names, new_record

from lro_server.core.record import OperationRecord
from lro_server.core.store import OperationStore
from lro_server.testing.clock import FakeClock

LEASE = 30.0
LEASE_US = 30_000_000


async def _unfinished(store: OperationStore, count: int) -> list[OperationRecord]:
    return [(await store.create(new_record()))[0] for _ in range(count)]


async def test_claim_leases_unfinished_operations_and_nothing_else(
    store: OperationStore,
) -> None:
    pending = await _unfinished(store, 3)
    await store.create(new_record(done=True))
    await store.create(new_record(done=True, error_code=2))

    claimed = await store.claim("a", LEASE, limit=10)

    assert sorted(names(claimed)) == sorted(names(pending))
    for record in claimed:
        assert (record.lease_holder, record.lease_expire_us) == ("a", T0 + LEASE_US)
        assert await store.get(record.name) == record
    # A lease is not an update: version and update time stay as they were.
    before = {r.name: r for r in pending}
    for record in claimed:
        unleased = dataclasses.replace(record, lease_holder="", lease_expire_us=0)
        assert unleased == before[record.name]


async def test_a_lease_excludes_other_holders_until_it_expires(
    store: OperationStore, clock: FakeClock
) -> None:
    await _unfinished(store, 3)
    await store.claim("a", LEASE, limit=10)

    assert await store.claim("b", LEASE, limit=10) == []
    clock.step(LEASE - 0.001)
    assert await store.claim("b", LEASE, limit=10) == []


async def test_the_holder_renews_its_lease(store: OperationStore, clock: FakeClock) -> None:
    pending = await _unfinished(store, 2)
    await store.claim("a", LEASE, limit=10)
    clock.step(20)

    renewed = await store.claim("a", LEASE, limit=10)

    assert sorted(names(renewed)) == sorted(names(pending))
    assert {r.lease_expire_us for r in renewed} == {T0 + 20_000_000 + LEASE_US}
    clock.step(LEASE - 1)  # past the first lease's end, within the renewal
    assert await store.claim("b", LEASE, limit=10) == []


async def test_another_holder_takes_over_an_expired_lease(
    store: OperationStore, clock: FakeClock
) -> None:
    pending = await _unfinished(store, 3)
    await store.claim("a", LEASE, limit=10)
    clock.step(LEASE + 0.001)

    taken = await store.claim("b", 10, limit=10)

    assert sorted(names(taken)) == sorted(names(pending))
    assert {r.lease_holder for r in taken} == {"b"}
    assert await store.claim("a", LEASE, limit=10) == []


async def test_a_lease_given_at_create_is_honoured(store: OperationStore, clock: FakeClock) -> None:
    record, _ = await store.create(new_record(lease_holder="a", lease_expire_us=T0 + LEASE_US))

    assert await store.claim("b", LEASE, limit=10) == []
    clock.step(LEASE + 1)
    assert names(await store.claim("b", LEASE, limit=10)) == [record.name]


async def test_an_operation_that_becomes_done_is_no_longer_claimed(
    store: OperationStore, clock: FakeClock
) -> None:
    (record,) = await _unfinished(store, 1)
    (leased,) = await store.claim("a", LEASE, limit=10)
    await store.update(
        dataclasses.replace(leased, operation=new_record(name=record.name, done=True).operation)
    )

    assert await store.claim("a", LEASE, limit=10) == []
    clock.step(LEASE + 1)
    assert await store.claim("b", LEASE, limit=10) == []


async def test_limit_caps_a_claim_and_the_rest_stays_available(store: OperationStore) -> None:
    pending = await _unfinished(store, 5)

    first = await store.claim("a", LEASE, limit=2)
    second = await store.claim("b", LEASE, limit=10)

    assert len(first) == 2 and len(second) == 3
    assert sorted(names(first + second)) == sorted(names(pending))
    assert await store.claim("c", LEASE, limit=0) == []


async def test_the_holder_renews_its_own_leases_before_taking_new_ones(
    store: OperationStore, clock: FakeClock
) -> None:
    await _unfinished(store, 2)
    mine = await store.claim("a", LEASE, limit=2)
    await _unfinished(store, 5)  # unleased: claimable by anyone
    clock.step(LEASE - 1)

    renewed = await store.claim("a", LEASE, limit=2)

    assert sorted(names(renewed)) == sorted(names(mine))


async def test_release_frees_the_holders_leases_at_once(store: OperationStore) -> None:
    pending = await _unfinished(store, 3)
    await store.claim("a", LEASE, limit=10)

    await store.release("a", [pending[0].name, pending[1].name])

    assert sorted(names(await store.claim("b", LEASE, limit=10))) == sorted(names(pending[:2]))
    released = await store.get(pending[2].name)
    assert released.lease_holder == "a"


async def test_release_ignores_other_holders_leases_and_unknown_names(
    store: OperationStore,
) -> None:
    pending = await _unfinished(store, 2)
    await store.claim("a", LEASE, limit=10)

    await store.release("b", names(pending))
    await store.release("a", [])
    await store.release("a", ["operations/00000000-0000-4000-8000-000000000000"])

    assert await store.claim("c", LEASE, limit=10) == []
    assert {(await store.get(r.name)).lease_holder for r in pending} == {"a"}


async def test_claim_and_release_show_in_the_next_get(store: OperationStore) -> None:
    (record,) = await _unfinished(store, 1)
    assert (await store.get(record.name)).lease_holder == ""

    (leased,) = await store.claim("a", LEASE, limit=10)
    assert await store.get(record.name) == leased
    assert leased.lease_holder == "a"

    await store.release("a", [record.name])
    released = await store.get(record.name)
    assert (released.lease_holder, released.lease_expire_us) == ("", 0)


async def test_another_stores_claim_and_release_show_in_the_next_get(
    store: OperationStore, connect: Callable[[], Awaitable[OperationStore]]
) -> None:
    other = await connect()
    (record,) = await _unfinished(store, 1)
    assert (await store.get(record.name)).lease_holder == ""

    (leased,) = await other.claim("b", LEASE, limit=10)
    assert await store.get(record.name) == leased

    await other.release("b", [record.name])
    assert (await store.get(record.name)).lease_holder == ""


async def test_update_keeps_the_lease(store: OperationStore) -> None:
    (record,) = await _unfinished(store, 1)
    (leased,) = await store.claim("a", LEASE, limit=10)

    # Written from a copy read before the claim: the lease must survive anyway.
    updated = await store.update(dataclasses.replace(record, state="RUNNING"))

    assert (updated.lease_holder, updated.lease_expire_us) == ("a", leased.lease_expire_us)
    assert await store.get(record.name) == updated
    assert await store.claim("b", LEASE, limit=10) == []


async def test_concurrent_claimers_never_share_an_operation(store: OperationStore) -> None:
    pending = await _unfinished(store, 10)

    results = await asyncio.gather(*(store.claim(f"r{i}", LEASE, limit=3) for i in range(5)))

    claimed = [name for batch in results for name in names(batch)]
    assert len(claimed) == len(set(claimed)) == 10
    assert set(claimed) == set(names(pending))


async def test_leases_are_exclusive_between_two_stores(
    store: OperationStore, connect: Callable[[], Awaitable[OperationStore]], clock: FakeClock
) -> None:
    other = await connect()
    pending = await _unfinished(store, 6)

    mine, theirs = await asyncio.gather(
        store.claim("a", LEASE, limit=4), other.claim("b", LEASE, limit=4)
    )

    assert not set(names(mine)) & set(names(theirs))
    assert sorted(names(mine + theirs)) == sorted(names(pending))
    renewed = await other.claim("b", LEASE, limit=10)
    assert sorted(names(renewed)) == sorted(names(theirs))
    clock.step(LEASE + 1)
    assert len(await other.claim("b", LEASE, limit=10)) == 6


# --- lease_holders ----------------------------------------------------------------------


async def test_lease_holders_counts_unfinished_operations_by_live_holder(
    store: OperationStore, clock: FakeClock
) -> None:
    assert await store.lease_holders() == {}
    await _unfinished(store, 5)
    await store.create(new_record(done=True))
    assert await store.lease_holders() == {"": 5}  # nobody holds them yet

    await store.claim("a", LEASE, limit=3)
    clock.step(1)
    await store.claim("b", LEASE, limit=10)
    assert await store.lease_holders() == {"a": 3, "b": 2}

    clock.step(LEASE - 0.5)  # a's leases expired, b's still hold
    assert await store.lease_holders() == {"": 3, "b": 2}


async def test_lease_holders_leaves_out_finished_and_counts_released_as_nobodys(
    store: OperationStore,
) -> None:
    pending = await _unfinished(store, 3)
    await store.claim("a", LEASE, limit=10)
    await store.update(
        dataclasses.replace(
            await store.get(pending[0].name),
            operation=new_record(name=pending[0].name, done=True).operation,
        )
    )
    await store.release("a", [pending[1].name])

    assert await store.lease_holders() == {"a": 1, "": 1}
