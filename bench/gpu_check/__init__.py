"""`python -m bench.gpu_check`: validate every CUDA path of brainbench in one short run.

Written for a GPU machine lent for a few minutes: each named check exercises one real path
(training precision and layout, torch.compile, deployment modes, torchrun, resume, bench-train)
on the embedded mini dataset with small sizes, inside its own try/except and time budget, and the
run writes one JSON of what passed. On a CPU the same checks run with tiny sizes where they can,
and those that need CUDA say "n/a: needs CUDA". `scripts/gpu_check.sh` is the one command for the
lent machine.
"""
