"""A failing rank brings the whole MPI job down with its message."""

import os
import subprocess
import sys
import textwrap

from conftest import ROOT, mpiexec, write_config


def run_failing_stage(tmp_path, failing_rank, error):
    """Run a stage whose ``run`` raises on one rank while the others wait in a collective."""
    script = tmp_path / "failing_stage.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from proxy_pixel_pipeline.runtime.cli import stage_main
        from proxy_pixel_pipeline.errors import PipelineError

        def run(cfg, comm, overwrite=False):
            if comm.rank == {failing_rank}:
                raise {error}("input broke on rank {failing_rank}")
            comm.Barrier()          # the healthy ranks would wait here forever

        sys.exit(stage_main(2, "test", run))
    """))
    config = write_config(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # The timeout only catches a hang; a healthy abort takes about a second.
    return subprocess.run([mpiexec(), "-n", "2", sys.executable, str(script), "--config", str(config)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_pipeline_error_on_rank_1_aborts_the_job(tmp_path):
    proc = run_failing_stage(tmp_path, 1, "PipelineError")
    assert proc.returncode != 0
    assert "error: stage 2 (rank 1): input broke on rank 1" in proc.stderr


def test_bug_on_rank_0_aborts_the_job_with_traceback(tmp_path):
    proc = run_failing_stage(tmp_path, 0, "ZeroDivisionError")
    assert proc.returncode != 0
    assert "ZeroDivisionError" in proc.stderr and "Traceback" in proc.stderr
