#!/usr/bin/env python3
"""torch-train-time.py SHARED_BENCH MODEL STEPS BATCH SEQ: the PyTorch peer's
LoRA training speed in the steady state, measured as bench-train.sh measures
deltactl's: torch_llama_ref.py's own train-time loop (LoRA r8 on q,k,v,o,
AdamW), run with 1 step and then with 1+STEPS steps in the same process; the
differences are STEPS steps without the first (PyTorch's first step costs
several later ones: allocator growth, lazy initialisation) and without the
model load. Prints one line: tokens/s of those steps' wall time, CPU seconds
per step of the whole process (all threads; steadier than wall time on a
shared machine) and peak RSS."""
import contextlib, io, resource, sys, time

bench, model, steps, batch, seq = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
sys.path.insert(0, bench)
import torch_llama_ref as ref  # noqa: E402 (the peer lives outside this repository)


def run(n):
    out = io.StringIO()
    cpu = time.process_time()
    with contextlib.redirect_stdout(out):
        ref.cmd_train_time(model, n, batch, seq)
    return float(out.getvalue()), time.process_time() - cpu


loop1, cpu1 = run(1)
loop, cpu = run(1 + steps)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(f"{steps * batch * seq / (loop - loop1):6.1f} tok/s  {(cpu - cpu1) / steps:6.1f} CPU s/step  peak RSS {rss / 2**30:5.2f} GiB")
