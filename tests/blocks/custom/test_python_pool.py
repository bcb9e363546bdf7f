"""The worker pool of ``custom/code`` with real processes: limits, deaths, concurrency, cleanup."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conv3n_jupyter.blocks.custom.python_pool import PythonPool
from conv3n_jupyter.errors import BlockError

ECHO = "def main(input, ctx):\n    return input\n"
PID = "import os\ndef main(input, ctx):\n    return os.getpid()\n"
WRITE_PID_THEN = """
import os, time
from pathlib import Path

def main(input, ctx):
    Path("pid.txt").write_text(str(os.getpid()))
{body}
"""


@pytest.fixture
async def pool() -> AsyncIterator[PythonPool]:
    async with PythonPool(max_workers=4) as pool:
        yield pool


def gone(pid: int) -> bool:
    """True when no process (not even a zombie) has this pid."""
    return not Path(f"/proc/{pid}").exists()


async def wait_for_file(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.01)
    return path.read_text()


async def test_idle_worker_is_reused(pool: PythonPool) -> None:
    """Sequential calls with the same limits run in the same warm worker."""
    first = await pool.call(PID)
    second = await pool.call(PID)
    assert first.data == second.data
    assert pool.pids() == [first.data]


async def test_a_different_memory_limit_gets_its_own_worker(pool: PythonPool) -> None:
    """Each worker has one RLIMIT_AS, so another limit means another worker."""
    small = await pool.call(PID, memory_limit_mb=128)
    large = await pool.call(PID, memory_limit_mb=256)
    assert small.data != large.data
    code = (
        "import resource\n"
        "def main(input, ctx):\n"
        "    return resource.getrlimit(resource.RLIMIT_AS)[0]\n"
    )
    assert (await pool.call(code, memory_limit_mb=128)).data == 128 * 1024 * 1024


async def test_timeout_kills_an_endless_loop_and_the_next_call_works(pool: PythonPool) -> None:
    """Past its timeout the worker is killed, the error names the limit and the line."""
    before = (await pool.call(PID)).data
    code = "def main(input, ctx):\n    n = 0\n    while True:\n        n += 1\n"
    started = time.monotonic()
    result = await pool.call(code, timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert result.error is not None
    assert result.error.error_type == "TimeoutError"
    assert "timeout of 300ms" in result.error.message
    assert result.error.line in (3, 4)
    assert 'File "<code:code>"' in result.error.user_stack
    for _ in range(100):
        if gone(before):
            break
        await asyncio.sleep(0.01)
    assert gone(before)
    after = await pool.call(PID)
    assert after.error is None
    assert after.data != before


async def test_timeout_ignoring_sigterm_is_killed_after_the_grace(pool: PythonPool) -> None:
    """Code that ignores SIGTERM still ends: SIGKILL follows after the grace period."""
    code = (
        "import signal\n"
        "def main(input, ctx):\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    while True:\n"
        "        pass\n"
    )
    started = time.monotonic()
    result = await pool.call(code, timeout=0.2)
    assert time.monotonic() - started < 2.0
    assert result.error is not None
    assert result.error.error_type == "TimeoutError"
    assert (await pool.call(ECHO, 1)).data == 1


async def test_memory_limit_is_a_runtime_error_and_the_worker_is_replaced(
    pool: PythonPool,
) -> None:
    """Allocating past memory_limit_mb fails with a RuntimeError saying the limit was hit."""
    code = (
        "def main(input, ctx):\n    block = bytearray(512 * 1024 * 1024)\n    return len(block)\n"
    )
    result = await pool.call(code, memory_limit_mb=128)
    assert result.error is not None
    assert result.error.error_type == "RuntimeError"
    assert result.error.message == "MemoryError: the memory limit of 128 MB was hit (line 2)"
    assert (await pool.call(ECHO, "ok", memory_limit_mb=128)).data == "ok"


async def test_worker_killed_from_outside_mid_call(pool: PythonPool, tmp_path: Path) -> None:
    """kill -9 of a busy worker fails the call as 'worker process died' and the pool recovers."""
    code = WRITE_PID_THEN.format(body="    time.sleep(30)\n")
    call = asyncio.create_task(pool.call(code, cwd=tmp_path))
    pid = int(await wait_for_file(tmp_path / "pid.txt"))
    os.kill(pid, signal.SIGKILL)
    result = await asyncio.wait_for(call, 10)
    assert result.error is not None
    assert result.error.error_type == "RuntimeError"
    assert result.error.retryable is True
    assert (
        result.error.message
        == "worker process died (killed by signal SIGKILL) while running the code"
    )
    assert gone(pid)
    assert (await pool.call(ECHO, 2, cwd=tmp_path)).data == 2


async def test_os_exit_in_user_code(pool: PythonPool) -> None:
    """os._exit inside main is a dead worker with its exit code."""
    result = await pool.call("import os\ndef main(input, ctx):\n    os._exit(7)\n")
    assert result.error is not None
    assert result.error.message == "worker process died (exit code 7) while running the code"
    assert (await pool.call(ECHO, 3)).data == 3


async def test_writes_to_file_descriptor_one_do_not_corrupt_replies(pool: PythonPool) -> None:
    """Raw writes to fd 1 (C code, child processes) cannot break the protocol."""
    code = (
        "import os, subprocess, sys\n"
        "def main(input, ctx):\n"
        "    os.write(1, b'\\x00\\x00\\x00\\x05junk')\n"
        "    subprocess.run([sys.executable, '-c', 'print(123)'], check=True)\n"
        "    return 'fine'\n"
    )
    assert (await pool.call(code)).data == "fine"
    assert (await pool.call(ECHO, 4)).data == 4


async def test_concurrent_calls_run_in_parallel(pool: PythonPool) -> None:
    """Four calls of 0.3 s each finish together in well under 4 x 0.3 s with four workers."""
    code = "import time\ndef main(input, ctx):\n    time.sleep(0.3)\n    return input\n"
    await asyncio.gather(*(pool.call(ECHO, i) for i in range(4)))  # four warm workers
    assert len(pool.pids()) == 4
    started = time.monotonic()
    results = await asyncio.gather(*(pool.call(code, i) for i in range(4)))
    elapsed = time.monotonic() - started
    assert [r.data for r in results] == [0, 1, 2, 3]
    assert elapsed < 0.8
    assert len(pool.pids()) == 4


async def test_max_workers_bounds_concurrency() -> None:
    """With one worker, concurrent calls queue and run one after another in it."""
    code = "import os, time\ndef main(input, ctx):\n    time.sleep(0.1)\n    return os.getpid()\n"
    async with PythonPool(max_workers=1) as pool:
        started = time.monotonic()
        results = await asyncio.gather(*(pool.call(code) for _ in range(3)))
        assert time.monotonic() - started >= 0.3
        assert len({r.data for r in results}) == 1


async def test_cancellation_kills_the_worker(pool: PythonPool, tmp_path: Path) -> None:
    """Cancelling the awaiting task kills the worker running an endless loop and re-raises."""
    code = WRITE_PID_THEN.format(body="    while True:\n        pass\n")
    call = asyncio.create_task(pool.call(code, cwd=tmp_path, timeout=None))
    pid = int(await wait_for_file(tmp_path / "pid.txt"))
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    for _ in range(200):
        if gone(pid):
            break
        await asyncio.sleep(0.01)
    assert gone(pid)
    assert (await pool.call(ECHO, 5, cwd=tmp_path)).data == 5


async def test_no_zombies_after_aclose() -> None:
    """aclose stops idle and busy workers and reaps every one of them."""
    pool = PythonPool(max_workers=3)
    sleeper = "import time\ndef main(input, ctx):\n    time.sleep(30)\n"
    await asyncio.gather(*(pool.call(ECHO, i) for i in range(3)))
    busy = asyncio.create_task(pool.call(sleeper))
    await asyncio.sleep(0.2)
    pids = pool.pids()
    assert len(pids) == 3
    await pool.aclose()
    assert all(gone(pid) for pid in pids)
    result = await asyncio.wait_for(busy, 5)
    assert result.error is not None
    assert "pool was closed" in result.error.message
    with pytest.raises(BlockError, match="closed"):
        await pool.call(ECHO)
    assert "closed" in repr(pool)


async def test_chatty_output_is_capped(pool: PythonPool) -> None:
    """A loop printing without end cannot flood the logs: lines past the cap are dropped."""
    code = "def main(input, ctx):\n    for i in range(20000):\n        print(i)\n    return 'ok'\n"
    result = await pool.call(code)
    assert result.data == "ok"
    assert len(result.logs) == 10_001
    assert result.logs[-1][0] == "warning"
    assert "dropped" in result.logs[-1][1]


async def test_exception_chain_keeps_user_frames_only(pool: PythonPool) -> None:
    """raise ... from ... shows both exceptions, each with the user's frames."""
    code = (
        "def main(input, ctx):\n"
        "    try:\n"
        "        {}['k']\n"
        "    except KeyError as exc:\n"
        "        raise ValueError('bad input') from exc\n"
    )
    result = await pool.call(code, node_id="n1")
    assert result.error is not None
    assert result.error.message == "ValueError: bad input (line 5)"
    stack = result.error.user_stack
    assert "KeyError: 'k'" in stack
    assert "direct cause" in stack
    assert stack.count('File "<code:n1>"') == 2


async def test_segfault_in_c_code_is_a_dead_worker(pool: PythonPool) -> None:
    """A crash in C code kills only the worker; its fault trace is kept in the details."""
    result = await pool.call("import ctypes\ndef main(input, ctx):\n    ctypes.string_at(0)\n")
    assert result.error is not None
    assert result.error.message == (
        "worker process died (killed by signal SIGSEGV) while running the code"
    )
    assert "Segmentation fault" in result.error.details["stderr"]
    assert (await pool.call(ECHO, 6)).data == 6


async def test_large_payloads_round_trip(pool: PythonPool) -> None:
    """Inputs and results of several megabytes pass through the pipes intact."""
    big = {"rows": [{"i": i, "text": "x" * 100} for i in range(50_000)]}
    result = await pool.call("def main(input, ctx):\n    return input['rows'][::-1]\n", big)
    assert result.error is None
    assert result.data[0]["i"] == 49_999
    assert len(result.data) == 50_000


async def test_user_signal_handlers_do_not_outlive_the_call(pool: PythonPool) -> None:
    """A SIGTERM handler set by one call is undone, so the next call's time limit still works."""
    setup = (
        "import signal\n"
        "def main(input, ctx):\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    return 1\n"
    )
    assert (await pool.call(setup)).data == 1
    loop = "def main(input, ctx):\n    while True:\n        pass\n"
    result = await pool.call(loop, timeout=0.2)
    assert result.error is not None
    assert result.error.line in (2, 3)
