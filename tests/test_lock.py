"""One run per output folder: a second run is refused, a dead job's lock is taken over."""

import json
import socket
import subprocess
import sys
import textwrap

import pytest

from conftest import run_script
from proxy_pixel_pipeline.errors import PipelineError
from proxy_pixel_pipeline.runtime.lock import LOCK_NAME, output_lock


def hold_lock(folder, seconds=30):
    """A separate process holding ``folder``'s lock (as a running stage would)."""
    code = textwrap.dedent(f"""
        import time
        from proxy_pixel_pipeline.runtime.lock import output_lock
        with output_lock({str(folder)!r}, 2):
            print("held", flush=True)
            time.sleep({seconds})
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_run_is_refused_naming_the_folder_and_the_job(tmp_path):
    holder = hold_lock(tmp_path / "out")
    try:
        with pytest.raises(PipelineError) as err:
            with output_lock(tmp_path / "out", 3):
                pass
        text = str(err.value)
        assert str(tmp_path / "out") in text and f"pid {holder.pid}" in text
        assert socket.gethostname() in text and "stage 2" in text and "started" in text
    finally:
        holder.kill()
        holder.wait()


def test_a_stage_script_is_refused_while_another_run_holds_the_folder(twin_dataset):
    run_script("1_Proxy_Matches.py", "--config", twin_dataset["config"])
    out = twin_dataset["folder"] / "output"
    holder = hold_lock(out)
    try:
        proc = run_script("2_Frames.py", "--config", twin_dataset["config"], check=False)
        assert proc.returncode == 1 and "in use by another run" in proc.stderr
        assert not (out / "background").exists()
    finally:
        holder.kill()
        holder.wait()
    run_script("2_Frames.py", "--config", twin_dataset["config"])   # free again once it is gone


def test_the_lock_holds_under_mpi(twin_dataset):
    run_script("1_Proxy_Matches.py", "--config", twin_dataset["config"])
    out = twin_dataset["folder"] / "output"
    holder = hold_lock(out)
    try:
        proc = run_script("2_Frames.py", "--config", twin_dataset["config"], ranks=2, check=False)
        assert proc.returncode != 0 and "in use by another run" in proc.stderr
        assert not (out / "background").exists()
    finally:
        holder.kill()
        holder.wait()
    run_script("2_Frames.py", "--config", twin_dataset["config"], ranks=2)


def test_lock_of_a_dead_job_is_taken_over_with_a_warning(twin_dataset):
    out = twin_dataset["folder"] / "output"
    out.mkdir()
    stale = {"host": socket.gethostname(), "pid": dead_pid(), "stage": 1, "start": "yesterday"}
    (out / LOCK_NAME).write_text(json.dumps(stale))
    proc = run_script("1_Proxy_Matches.py", "--config", twin_dataset["config"])
    assert "taking over the lock of a job that is gone" in proc.stderr
    assert not (out / LOCK_NAME).exists()       # released at the end


def test_lock_is_released_after_a_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with output_lock(tmp_path / "out", 1):
            raise RuntimeError("boom")
    assert not (tmp_path / "out" / LOCK_NAME).exists()
    with output_lock(tmp_path / "out", 1):
        pass
