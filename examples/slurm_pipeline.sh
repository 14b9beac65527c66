#!/bin/bash
# Run the stages of the Proxy Pixel Pipeline as one Slurm job.
#
#   sbatch examples/slurm_pipeline.sh path/to/config.yaml
#
# Uses the cluster's MPI through srun (build mpi4py against it: see README,
# "On a cluster").  The same in one job step, skipping the stages whose
# products are already current: `srun ppp run path/to/config.yaml` (README,
# "Running the stages by hand"; `ppp status` tells which stages are current).  To run the stages as separate, dependent jobs instead,
# submit one script per stage and chain them:
#   jid=$(sbatch --parsable --export=STAGES=1_Proxy_Matches examples/slurm_pipeline.sh cfg.yaml)
#   sbatch --dependency=afterok:$jid --export=STAGES="2_Frames 3_Median_Fits ..." \
#          examples/slurm_pipeline.sh cfg.yaml
# (`python -m proxy_pixel_pipeline.runtime.registry` lists the stages in order.)
# Resuming after a time-limit kill: resubmit the same job.  Stage 1 keeps its
# finished blocks in output_dir/.checkpoints, the per-frame stages their
# finished frames in output_dir/.staging, and each continues from them (a
# time limit's SIGTERM releases the output folder's lock); stages whose outputs
# are complete are skipped by listing only the remaining ones in STAGES.  Every
# output is written under a temporary name and renamed when complete, so a
# killed job never leaves a file that looks finished.
#
#SBATCH --job-name=proxy-pixel
#SBATCH --nodes=1
#SBATCH --ntasks=8
#SBATCH --cpus-per-task=1
#SBATCH --time=02:00:00
#SBATCH --output=proxy-pixel-%j.log

set -euo pipefail

CONFIG=${1:-config.yaml}
# sbatch runs a copy of this script from its spool folder, so "$0" does not locate
# the pipeline there: use the folder sbatch was called from (the repository, as in
# the usage line above), else this script's own folder, or set PIPELINE_DIR.
if [[ -z "${PIPELINE_DIR:-}" ]]; then
    if [[ -n "${SLURM_SUBMIT_DIR:-}" && -f "$SLURM_SUBMIT_DIR/proxy_pixel_pipeline/runtime/registry.py" ]]; then
        PIPELINE_DIR=$SLURM_SUBMIT_DIR
    else
        PIPELINE_DIR=$(cd "$(dirname "$0")/.." && pwd)
    fi
fi
if [[ ! -f "$PIPELINE_DIR/proxy_pixel_pipeline/runtime/registry.py" ]]; then
    echo "error: no proxy_pixel_pipeline/runtime/registry.py in $PIPELINE_DIR; set PIPELINE_DIR to the pipeline's folder" >&2
    exit 1
fi
PYTHON=${PYTHON:-python}
# Every stage, in order, unless STAGES names some (the registry lists them).
STAGES=${STAGES:-$(cd "$PIPELINE_DIR" && "$PYTHON" -m proxy_pixel_pipeline.runtime.registry)}
LAUNCH=${LAUNCH:-srun}           # or: LAUNCH="mpiexec -n $SLURM_NTASKS"

for stage in $STAGES; do
    echo "=== $stage ($(date))"
    $LAUNCH "$PYTHON" "$PIPELINE_DIR/$stage.py" --config "$CONFIG" --overwrite
done
"$PYTHON" "$PIPELINE_DIR/make_figures.py" --config "$CONFIG"
