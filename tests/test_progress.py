"""The progress display: fraction done and an ETA that start-up does not inflate."""

from mpi4py import MPI

from proxy_pixel_pipeline.runtime import logs


class _Lines:
    def __init__(self):
        self.lines = []

    def info(self, fmt, *args):
        self.lines.append(fmt % args)


def test_eta_uses_the_rate_after_the_first_finished_work(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: clock[0])
    progress = logs.Progress(MPI.COMM_SELF, total=100, label="matching", interval=5.0)
    progress._log = _Lines()
    clock[0] = 30.0                  # the first block also paid for start-up
    progress.update(10)
    clock[0] = 40.0                  # then 10 units per 10 s
    progress.update(10)
    last = progress._log.lines[-1]
    assert "20.0% (20/100)" in last and "elapsed 40 s" in last
    # 80 units left at 1 unit/s: 80 s, not the 160 s that the whole elapsed time implies.
    assert last.endswith("ETA 80 s"), last
    clock[0] = 120.0
    progress.close(100)              # this (only) rank's final count
    assert progress._log.lines[-1].startswith("matching: 100 done in 120.0 s")
