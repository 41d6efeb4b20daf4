#!/usr/bin/env bash
# Eighth stage of the bundled default model (2026-11-26): the one GPU session so far, on a lent NVIDIA H100.
#
# Here (the build VM), in the repository root: pack the broader corpus for the trip (xz: the device machine's
# Python reads it with the standard library; 255 MB of train.bin travel as 37 MB):
#   mkdir -p .gpu && echo /.gpu/ >> .git/info/exclude
#   for f in train.bin val.bin manifest.json; do xz -9 -T2 -c data/default-corpus-2/$f > .gpu/$f.xz; done
#   cp recipes/default-model/gpu-stage.sh .gpu/run.sh
# There (device `run`, carry .gpu): `bash .gpu/run.sh`. Three runs shared the GPU for 6.5 minutes each,
# the corpus's val sample after them: A 1.1757 (seq-len 256, lr 1.5e-3), B 1.1640 (seq-len 128, lr 6e-4,
# float32 kernels), C 1.8318 (2 x 512 from scratch). B was then resumed alone on the still-warm machine
# (the second command at the end of this file) to 1.1451; runs/gpu-B became the bundled weights.
# There is no package install: `codelstm train` needs torch, numpy, safetensors, tqdm and matplotlib, all in
# the device image, and runs from the source tree (PYTHONPATH).
#
# DEV, MIN, KILL, L (lanes) and EB (validation bytes) can be overridden for a dry run on a CPU
# (DEV=cpu MIN=0.3 KILL=400 L=8 EB=20000 OUT=/tmp/out bash .gpu/run.sh).
set -u
DEV=${DEV:-cuda}; MIN=${MIN:-6.5}; KILL=${KILL:-450}; L=${L:-1024}; EB=${EB:-300000}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD OMP_NUM_THREADS=4
LOG=$OUT/run.log
{ date; nvidia-smi 2>&1 | head -15; python3 -c 'import torch,sys; print(sys.version, torch.__version__, torch.cuda.is_available())'; } >> $LOG 2>&1
if [ ! -s data/default-corpus-2/train.bin ]; then
  mkdir -p data/default-corpus-2
  python3 - >> $LOG 2>&1 <<'PY'
import lzma, shutil, time
t = time.time()
for n in ("train.bin", "val.bin", "manifest.json"):
    with lzma.open(f".gpu/{n}.xz") as src, open(f"data/default-corpus-2/{n}", "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 24)
print("unpacked in", round(time.time() - t, 1), "s")
PY
fi
ls -la data/default-corpus-2 >> $LOG
CLI='import sys; from codelstm.cli import main; sys.exit(main(sys.argv[1:]))'
run() {
  name=$1; shift
  timeout $KILL python3 -c "$CLI" train --data data/default-corpus-2 --out runs/gpu-$name --minutes $MIN --device $DEV \
    --eval-bytes $EB --half --no-report --quiet "$@" > $OUT/$name.out 2>&1
  echo "== $name rc=$?" >> $OUT/$name.out
}
run A --init default --lanes $L --seq-len 256 --lr 1.5e-3 --warmup 300 --eval-interval 400 &
run B --init default --lanes $L --seq-len 128 --lr 6e-4 --warmup 200 --eval-interval 800 --precision float32 &
run C --hidden 512 --layers 2 --embed 64 --lanes $L --seq-len 256 --lr 2e-3 --warmup 300 --eval-interval 400 &
(sleep 90; nvidia-smi >> $LOG 2>&1) &
wait
date >> $LOG
for n in A B C; do
  d=runs/gpu-$n
  echo "== $n" >> $LOG; tail -c 3000 $OUT/$n.out >> $LOG; rm -f $OUT/$n.out
  grep val_bpc $d/metrics.jsonl >> $LOG 2>&1
  files="config.json model.safetensors metrics.jsonl loss.png"
  [ $n != C ] && [ -f $d/last/model.safetensors ] && files="$files last/config.json last/model.safetensors"
  (cd $d && tar cf $OUT/$n.tar $(for f in $files; do [ -e $f ] && echo $f; done))
done
ls -la $OUT >> $LOG
cat $LOG
# The second device command, on the same machine right after (B alone: 1.5 B more chars in 290 s, 5.2 M chars/s):
#   timeout 345 python3 -c "$CLI" train --data data/default-corpus-2 --out runs/gpu-B --resume --minutes 11.3 \
#     --device cuda --lanes 1024 --seq-len 128 --lr 6e-4 --warmup 200 --eval-interval 800 --eval-bytes 300000 \
#     --precision float32 --half --no-report --quiet
#   (cd runs/gpu-B && tar cf $OUT/B2.tar config.json model.safetensors metrics.jsonl loss.png last/config.json last/model.safetensors)
# Back here: its init.path (the device's path) was replaced by a "from" line naming the commit, the mixer refitted
# and the folder evaluated (build.sh, after the seventh stage).
