"""Science: MPI-free functions of arrays and parameters."""
