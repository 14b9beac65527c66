"""Runtime: command line, stage registry, settings, config, staging, locks, MPI, logs, discovery."""
