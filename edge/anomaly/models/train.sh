#!/bin/sh
# Retrain the shipped edge anomaly bundle: offline (simulated districts with injected faults, seeds 1-4 for training,
# seed 1001 held out), a few minutes on one core. Writes edge/anomaly/models/$VERSION with report/ (JSON, PNG).
set -eu
cd "$(dirname "$0")/../../.."
VERSION="${1:-sim5-s1-d96}"
OMP_NUM_THREADS=1 .venv/bin/flurfunk cloud train-anomaly --seed 1 --days 96 --test-days 7 --scale 0.3 \
    --version "$VERSION" --out "edge/anomaly/models/$VERSION"
