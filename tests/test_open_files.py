"""A process out of file descriptors is the host's state, not the file's fault: the file waits (as for a store
that cannot be reached) without using its attempts, and loads once descriptors are free again.

For real: a child process runs `Pipeline.process()` after lowering its own soft `RLIMIT_NOFILE` to the
descriptors it has open, so that the next `open` fails with `EMFILE`; a timer raises the limit again a few seconds
later. Before, the call failed (recovery's first `open` raised), and under `ulimit -n 10` `landfall process`
failed each attempt with `[Errno 24] Too many open files` and the file was dead after three.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import errno, os, resource, sys, threading
    import landfall

    lake, config = sys.argv[1], sys.argv[2]
    with landfall.Pipeline(landfall.load_settings(config)) as p:
        assert p.process().count("succeeded") == 1  # every module a run needs is imported, every connection open
        with open(os.path.join(lake, "landing", "t", "b.csv"), "w") as fh:
            fh.write("id,v\\n" + "".join(f"{i},{i * 2}\\n" for i in range(1000)))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        opened = max(int(fd) for fd in os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (opened + 1, hard))
        held = []
        try:
            while len(held) < opened:  # the free numbers below the limit taken: the next descriptor is refused
                held.append(os.open(config, os.O_RDONLY))
            raise SystemExit("the lowered limit refused nothing")
        except OSError as exc:
            assert exc.errno == errno.EMFILE, exc
        threading.Timer(4.0, resource.setrlimit, (resource.RLIMIT_NOFILE, (soft, hard))).start()
        print("processed", p.process().count("succeeded"), flush=True)
    """
)


def test_a_process_out_of_file_descriptors_waits_without_blaming_the_file(tmp_path):
    lake = tmp_path / "lake"
    (lake / "landing" / "t").mkdir(parents=True)
    (lake / "landing" / "t" / "a.csv").write_text("id,v\n1,2\n")
    config = tmp_path / "landfall.yaml"
    config.write_text(f"lake: {lake}\nworkflows:\n  - name: t\n    match: t/\n    write: {{table: t}}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(lake), str(config)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "processed 1" in out.stdout, out.stdout + out.stderr
    assert "Too many open files" in out.stderr and "trying again" in out.stderr, out.stderr  # waited for them
    cmd = [sys.executable, "-m", "landfall", "--config", str(config)]
    runs = subprocess.run([*cmd, "runs"], env=env, capture_output=True, text=True, timeout=60).stdout
    assert "failed" not in runs and "dead" not in runs, runs  # no attempt was used up
    rows = subprocess.run([*cmd, "query", "SELECT count(*) FROM t"], env=env, capture_output=True, text=True).stdout
    assert rows.split() == ["count_star()", "1001"], rows
