"""Sync script calls go out on a connection their thread holds, against a real Redis.

The limiter's acquire is one ``EVALSHA`` on every facade call; borrowing a pool connection and
redis-py's command wrapper around it cost about a third of the client's CPU per round trip, so a
thread keeps its own (``_backends/_redis.py``). These tests pin what that must not break: answers
stay each caller's own (threads, a forked child), a thread's connection goes back to the pool
when the thread ends, a broken connection is replaced, a flushed script is loaded again, and
clients whose pool must not lend connections keep the pooled path.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from typing import Any

import pytest
import redis

from intercom_resilience._backends import _redis
from intercom_resilience._backends._redis import _MAX_IDLE_PER_LOOP, MISSED, RedisLink, Script
from intercom_resilience._clock import SystemClock, VirtualClock
from tests.redis_support import RedisServer

pytestmark = pytest.mark.redis

#: Answers with its argument: a reply that is not the caller's own shows a shared connection.
ECHO = Script("return ARGV[1]")


class CountingRedis(redis.Redis):
    """A real client that counts the commands sent through ``execute_command``."""

    commands = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        type(self).commands += 1
        return super().execute_command(*args, **options)


def _named(url: str, name: str) -> str:
    """*url* with a client name, so the server can tell this test's connections apart."""
    return f"{url}{'&' if '?' in url else '?'}client_name={name}"


def _connections_named(url: str, name: str) -> int:
    observer = redis.Redis.from_url(url)
    try:
        return sum(1 for entry in observer.client_list() if entry.get("name") == name)
    finally:
        observer.close()


def _wait_for_the_server_to_close(url: str, name: str) -> None:
    """Until the server (its ``timeout``) has closed the idle connections called *name*."""
    for _ in range(400):  # readiness, not timing
        if _connections_named(url, name) == 0:
            return
        time.sleep(0.025)
    pytest.fail("the server never closed the idle connection")


def _link(url: str, clock: Any = None) -> RedisLink:
    return RedisLink("limiter", url, clock or SystemClock(), None, socket_timeout=2.0)


def test_a_script_call_skips_the_pooled_command_path(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = _link(redis_url)
    pooled: list[object] = []
    send = link.client.execute_command

    def counted(*args: Any, **options: Any) -> Any:  # a spy: the real command still runs
        pooled.append(args[0])
        return send(*args, **options)

    monkeypatch.setattr(link.client, "execute_command", counted)
    try:
        replies = [link.call(ECHO, ["k"], [f"call-{i}"]) for i in range(20)]
    finally:
        link.close()
    assert replies == [f"call-{i}".encode() for i in range(20)]
    assert pooled == []  # before: one execute_command (a pool borrow and return) per call


def test_a_client_of_the_callers_keeps_the_pooled_path(redis_url: str) -> None:
    CountingRedis.commands = 0
    pool = redis.BlockingConnectionPool.from_url(redis_url, max_connections=2, timeout=2)
    client = CountingRedis(connection_pool=pool)
    link = RedisLink("limiter", "redis://unused", SystemClock(), None, client=client)
    try:
        assert [link.call(ECHO, ["k"], [str(i)]) for i in range(5)] == [
            str(i).encode() for i in range(5)
        ]
    finally:
        link.close()
    # Its pool, timeouts and retries are the caller's: every call goes through them.
    assert CountingRedis.commands >= 5


def test_threads_get_their_own_answers_and_give_connections_back(redis_url: str) -> None:
    name = f"held-{uuid.uuid4().hex[:8]}"
    link = _link(_named(redis_url, name))
    wrong: list[tuple[bytes, bytes]] = []

    def calls(label: str) -> None:
        for i in range(100):
            expected = f"{label}-{i}".encode()
            reply = link.call(ECHO, ["k"], [expected])
            if reply != expected:
                wrong.append((expected, reply))

    try:
        together = [threading.Thread(target=calls, args=(f"t{n}",)) for n in range(4)]
        for thread in together:
            thread.start()
        for thread in together:
            thread.join()
        assert wrong == []
        assert _connections_named(redis_url, name) <= 4
        # Threads that come and go one after the other: each gives its connection back when it
        # ends, so the next one borrows it instead of opening another.
        for n in range(5):
            thread = threading.Thread(target=calls, args=(f"later{n}",))
            thread.start()
            thread.join()
        assert wrong == []
        assert _connections_named(redis_url, name) <= 4
    finally:
        link.close()


def test_at_most_the_cap_of_threads_hold_a_connection(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big thread pool must not open a connection per thread: past the cap, threads borrow."""
    monkeypatch.setattr(_redis, "_MAX_HELD", 2)
    link = _link(redis_url)
    threads = 6
    all_called = threading.Barrier(threads)
    holders_seen: list[int] = []
    wrong: list[bytes] = []

    def calls(label: str) -> None:
        for i in range(50):
            expected = f"{label}-{i}".encode()
            if link.call(ECHO, ["k"], [expected]) != expected:
                wrong.append(expected)
        all_called.wait()  # every thread alive and past its calls: count the holders now
        holders_seen.append(link._holders.count)
        all_called.wait()

    try:
        started = [threading.Thread(target=calls, args=(f"t{n}",)) for n in range(threads)]
        for thread in started:
            thread.start()
        for thread in started:
            thread.join()
        assert wrong == []
        assert holders_seen == [2] * threads
        for _ in range(200):  # readiness, not timing: a thread's locals go as its state is cleared
            if link._holders.count == 0:
                break
            time.sleep(0.01)
        assert link._holders.count == 0  # each holder gave its connection back as its thread ended
    finally:
        link.close()


def test_a_forked_child_does_not_share_the_parents_connection(redis_url: str) -> None:
    link = _link(redis_url)
    assert link.call(ECHO, ["k"], ["before the fork"]) == b"before the fork"
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own connection, or its answers would be the parent's
        status = 0
        try:
            os.close(ready_read)
            os.write(ready_write, b"x")
            for i in range(300):
                if link.call(ECHO, ["k"], [f"child-{i}"]) != f"child-{i}".encode():
                    status = 1
        except BaseException:
            status = 2
        finally:
            os._exit(status)
    os.close(ready_write)
    os.read(ready_read, 1)
    os.close(ready_read)
    try:
        parent = [link.call(ECHO, ["k"], [f"parent-{i}"]) for i in range(300)]
    finally:
        _, status = os.waitpid(pid, 0)
        link.close()
    assert parent == [f"parent-{i}".encode() for i in range(300)]
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_killed_connection_is_replaced_on_the_next_probe(redis_url: str) -> None:
    name = f"held-{uuid.uuid4().hex[:8]}"
    clock = VirtualClock()
    link = _link(_named(redis_url, name), clock)
    try:
        assert link.call(ECHO, ["k"], ["up"]) == b"up"
        killer = redis.Redis.from_url(redis_url)
        try:  # only this test's connection: other tests share the server
            (held,) = [entry for entry in killer.client_list() if entry.get("name") == name]
            assert killer.client_kill_filter(_id=held["id"]) == 1
        finally:
            killer.close()
        assert link.call(ECHO, ["k"], ["lost"]) is MISSED  # the held socket is gone
        assert not link.available
        clock.advance(60)  # past the latch's pause: the next call probes
        assert link.call(ECHO, ["k"], ["back"]) == b"back"
        assert link.available
    finally:
        link.close()


def test_a_flushed_script_is_loaded_again_on_the_held_connection(
    redis_server: RedisServer,
) -> None:
    link = _link(redis_server.url)
    try:
        assert link.call(ECHO, ["k"], ["first"]) == b"first"
        with redis.Redis.from_url(redis_server.url) as admin:
            admin.script_flush()
        assert link.call(ECHO, ["k"], ["again"]) == b"again"
        assert link.available
    finally:
        link.close()


def test_a_connection_the_server_closed_while_idle_is_not_a_failure(
    redis_server: RedisServer,
) -> None:
    """Redis's ``timeout`` (or a proxy) closes idle connections: the next call reconnects
    before it sends, as the pool does when it lends one, instead of reporting Redis down."""
    admin = redis.Redis.from_url(redis_server.url)
    admin.config_set("timeout", 1)
    name = f"held-{uuid.uuid4().hex[:8]}"
    link = _link(_named(redis_server.url, name))
    try:
        assert link.call(ECHO, ["k"], ["before"]) == b"before"
        _wait_for_the_server_to_close(redis_server.url, name)
        assert link.call(ECHO, ["k"], ["after"]) == b"after"
        assert link.available
    finally:
        link.close()
        admin.close()


# -- async: an event loop keeps a few connections for its script calls ---------------------------


async def test_a_loops_script_calls_skip_the_pooled_command_path(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = _link(redis_url)
    assert await link.acall(ECHO, ["k"], ["first"]) == b"first"  # makes the loop's client
    client = link._loops[asyncio.get_running_loop()][0]
    pooled: list[object] = []
    send = client.execute_command

    async def counted(*args: Any, **options: Any) -> Any:  # a spy: the real command still runs
        pooled.append(args[0])
        return await send(*args, **options)

    monkeypatch.setattr(client, "execute_command", counted)
    try:
        replies = [await link.acall(ECHO, ["k"], [f"call-{i}"]) for i in range(20)]
    finally:
        await link.aclose()
    assert replies == [f"call-{i}".encode() for i in range(20)]
    assert pooled == []  # before: one execute_command (a pool borrow and return) per call


async def test_concurrent_tasks_get_their_own_answers(redis_url: str) -> None:
    link = _link(redis_url)

    async def calls(label: str) -> list[bool]:
        return [
            await link.acall(ECHO, ["k"], [f"{label}-{i}"]) == f"{label}-{i}".encode()
            for i in range(30)
        ]

    try:
        results = await asyncio.gather(*(calls(f"task{n}") for n in range(20)))
        idle = link._loops[asyncio.get_running_loop()][2]
    finally:
        await link.aclose()
    assert all(all(task) for task in results)
    assert 1 <= len(idle) <= _MAX_IDLE_PER_LOOP  # the rest went back to the pool


async def test_a_cancelled_call_leaves_no_answer_for_the_next_one(
    redis_server: RedisServer,
) -> None:
    """The late answer of a cancelled script must never be read as the next call's."""
    slow = Script("for i = 1, 30000000 do end return ARGV[1]")  # a few hundred ms of Lua
    link = _link(redis_server.url)
    try:
        assert await link.acall(ECHO, ["k"], ["warm"]) == b"warm"
        task = asyncio.ensure_future(link.acall(slow, ["k"], ["the slow one"]))
        await asyncio.sleep(0.05)  # it has been sent; the server is running it
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await link.acall(ECHO, ["k"], ["next"]) == b"next"
        assert await link.acall(ECHO, ["k"], ["and the next"]) == b"and the next"
    finally:
        await link.aclose()


async def test_a_loops_connection_the_server_closed_while_idle_is_not_a_failure(
    redis_server: RedisServer,
) -> None:
    admin = redis.Redis.from_url(redis_server.url)
    admin.config_set("timeout", 1)
    name = f"held-{uuid.uuid4().hex[:8]}"
    link = _link(_named(redis_server.url, name))
    try:
        assert await link.acall(ECHO, ["k"], ["before"]) == b"before"
        # In a thread, so that the loop stays live and takes in the server's end of stream (a
        # loop blocked across the close would lend the dead socket: redis-py's check, as before).
        await asyncio.to_thread(_wait_for_the_server_to_close, redis_server.url, name)
        assert await link.acall(ECHO, ["k"], ["after"]) == b"after"
        assert link.available
    finally:
        await link.aclose()
        admin.close()
