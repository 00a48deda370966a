#!/usr/bin/env bash
# Installs the Debian packages aepsl builds and links against, when any is missing.
# --with-chromium also installs headless Chromium, which the report's browser test
# (Tests/ReportTests) drives; --with-mpi installs Open MPI (libopenmpi-dev, openmpi-bin) for
# builds with the MPI trait and the mpirun tests (Tests/DistributedTests); --with-python3
# installs python3 for the loopback HTTP server of the weights-download tests
# (Tests/EngineTests/range_server.py, standard library only) and numpy, with which the
# interop tests check that np.load reads the .npy files aepsl writes, and python3-venv, in which
# scripts/python-test-env.sh installs onnxruntime for the export tests; --with-test-data installs
# labelme-examples, whose real PASCAL VOC photographs and masks Tests/VOCFilesTests read.
# `make test` passes all four.
# Runs as root or through sudo. Safe to run again: it does nothing when all are present.
set -euo pipefail
packages=(libdnnl-dev libopenblas-openmp-dev libpng-dev libjpeg-dev pkg-config)
for arg in "$@"; do
  case "$arg" in
    --with-chromium) packages+=(chromium) ;;
    --with-mpi) packages+=(libopenmpi-dev openmpi-bin) ;;
    --with-python3) packages+=(python3 python3-numpy python3-venv) ;;
    --with-test-data) packages+=(labelme-examples) ;;
    *) echo "aepsl: unknown option $arg (known: --with-chromium, --with-mpi, --with-python3, --with-test-data)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "aepsl: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "aepsl: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
