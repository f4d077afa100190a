#!/usr/bin/env bash
# On a lent GPU box, the command of the call benchmarks/device_prep.py prints: install the
# carried wheels (.whl) into a folder on PYTHONPATH, unpack Debian's Redis 7 (.whl/redis) and
# Fashion-MNIST (.data) under /tmp, then run every GPU check, the seed study through
# `mlplab up` included; the table is printed and kept in $OUT/gpu_check.txt.
#
#   bash benchmarks/device_run.sh [gpu_check.py options]   (default: --device cuda)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
box=${DEVICE_RUN_DIR:-/tmp/mlplab-box}
mkdir -p "$box"

"$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$box/site" .whl/*.whl
export PYTHONPATH="$box/site${PYTHONPATH:+:$PYTHONPATH}"

# redis-server is a link to redis-check-rdb, which acts by the name it is called by
for deb in .whl/redis/*.deb; do dpkg-deb -x "$deb" "$box/redis"; done
mkdir -p "$box/bin"
cat >"$box/bin/redis-server" <<EOF
#!/usr/bin/env bash
LD_LIBRARY_PATH="$box/redis/usr/lib/x86_64-linux-gnu" exec -a redis-server "$box/redis/usr/bin/redis-check-rdb" "\$@"
EOF
chmod +x "$box/bin/redis-server"
export PATH="$box/bin:$PATH"
redis-server --version || { ldd "$box/redis/usr/bin/redis-check-rdb"; exit 1; }

raw="$box/data/FashionMNIST/raw"
mkdir -p "$raw"
for gz in .data/FashionMNIST/raw/*.gz; do gunzip -c "$gz" >"$raw/$(basename "$gz" .gz)"; done
export MLPLAB_DATA_DIR="$box/data" PYTHONUNBUFFERED=1

args=("$@")
[ $# -gt 0 ] || args=(--device cuda)
"$python" benchmarks/gpu_check.py "${args[@]}" 2>&1 | tee "${OUT:-$box}/gpu_check.txt"
