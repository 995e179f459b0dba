"""Request ids the gateway makes (gateway.tracing): unguessable, and never the same in two
worker processes forked from one parent (the ids are drawn from the OS in batches)."""

from __future__ import annotations

import multiprocessing
import re
from multiprocessing.connection import Connection

from gateway.tracing import new_request_id, request_id_from, traceparent_from


def _child_ids(pipe: Connection) -> None:
    pipe.send([new_request_id() for _ in range(3)])
    pipe.close()


def test_a_forked_worker_does_not_repeat_its_parents_ids() -> None:
    first = new_request_id()  # the parent now holds a batch of ids drawn in advance
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=_child_ids, args=(sending,))
    child.start()
    from_child = receiving.recv()
    child.join(10)
    assert child.exitcode == 0
    from_parent = [new_request_id() for _ in range(3)]
    assert not set(from_child) & set(from_parent)
    assert first not in from_child


def test_ids_are_128_random_bits_as_hex() -> None:
    ids = [new_request_id() for _ in range(600)]  # more than one batch
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids)
    assert len(set(ids)) == 600
    assert len({value[:8] for value in ids}) == 600  # no shared prefix


def test_a_valid_client_id_is_kept_and_an_invalid_one_replaced() -> None:
    assert request_id_from(b"trace-42") == "trace-42"
    made = request_id_from(b"bad id!")
    assert re.fullmatch(r"[0-9a-f]{32}", made)


def test_new_traceparents_are_valid_and_distinct() -> None:
    made = [traceparent_from(None) for _ in range(600)]  # more than one batch
    for value in made:
        match = re.fullmatch(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-01", value)
        assert match is not None
        assert match.group(1) != b"0" * 32
        assert match.group(2) != b"0" * 16
    assert len(set(made)) == 600
    assert len({value[3:35] for value in made}) == 600  # no trace id repeated


def test_a_valid_client_traceparent_is_kept_and_an_invalid_one_replaced() -> None:
    kept = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert traceparent_from(kept) == kept
    zero_span = b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"
    replaced = traceparent_from(zero_span)
    assert replaced != zero_span
    assert re.fullmatch(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-01", replaced)


def _child_traceparents(pipe: Connection) -> None:
    pipe.send([traceparent_from(None) for _ in range(3)])
    pipe.close()


def test_a_forked_worker_does_not_repeat_its_parents_traceparents() -> None:
    first = traceparent_from(None)  # the parent now holds a batch made in advance
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=_child_traceparents, args=(sending,))
    child.start()
    from_child = receiving.recv()
    child.join(10)
    assert child.exitcode == 0
    from_parent = [traceparent_from(None) for _ in range(3)]
    assert not set(from_child) & set(from_parent)
    assert first not in from_child
