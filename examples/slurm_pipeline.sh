#!/bin/bash
# Run the five stages of the Proxy Pixel Pipeline as one Slurm job.
#
#   sbatch examples/slurm_pipeline.sh path/to/config.yaml
#
# Uses the cluster's MPI through srun (build mpi4py against it: see README,
# "On a cluster").  To run the stages as separate, dependent jobs instead,
# submit one script per stage and chain them:
#   jid=$(sbatch --parsable --export=STAGES=1_Proxy_Matches examples/slurm_pipeline.sh cfg.yaml)
#   sbatch --dependency=afterok:$jid --export=STAGES="2_Frames 3_Median_Fits 4_Final_Fits 5_Infill" \
#          examples/slurm_pipeline.sh cfg.yaml
# Resuming after a time-limit kill: resubmit the same job.  Stage 1 keeps its
# finished blocks in output_dir/.checkpoints and continues from them; stages
# whose outputs are complete are skipped by listing only the remaining ones
# in STAGES.  Every output is written under a temporary name and renamed when
# complete, so a killed job never leaves a file that looks finished.
#
#SBATCH --job-name=proxy-pixel
#SBATCH --nodes=1
#SBATCH --ntasks=8
#SBATCH --cpus-per-task=1
#SBATCH --time=02:00:00
#SBATCH --output=proxy-pixel-%j.log

set -euo pipefail

CONFIG=${1:-config.yaml}
STAGES=${STAGES:-"1_Proxy_Matches 2_Frames 3_Median_Fits 4_Final_Fits 5_Infill"}
PIPELINE_DIR=${PIPELINE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
PYTHON=${PYTHON:-python}
LAUNCH=${LAUNCH:-srun}           # or: LAUNCH="mpiexec -n $SLURM_NTASKS"

for stage in $STAGES; do
    echo "=== $stage ($(date))"
    $LAUNCH "$PYTHON" "$PIPELINE_DIR/$stage.py" --config "$CONFIG" --overwrite
done
"$PYTHON" "$PIPELINE_DIR/make_figures.py" --config "$CONFIG"
