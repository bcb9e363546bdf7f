"""The CEL engine's first use from several threads at once (a server's validation threads).

Its native module is loaded by hand and panics when initialised twice; a fresh interpreter
whose threads all compile their first expression together must get working programs.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_first_use_from_many_threads_loads_the_engine_once() -> None:
    script = textwrap.dedent(
        """
        import threading
        from conv3n_jupyter import _cel

        start = threading.Barrier(8)
        errors = []

        def work(k):
            start.wait()
            for i in range(50):
                try:
                    _cel.program(f"size(input.user) > {k * 1000 + i}")
                except BaseException as exc:
                    errors.append(repr(exc))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(len(errors), errors[:2])
        """
    )
    for _ in range(3):  # the race needs the threads to meet in the loader; try a few times
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip() == "0 []", done.stdout + done.stderr[-2000:]
        assert "panicked" not in done.stderr, done.stderr[-2000:]
