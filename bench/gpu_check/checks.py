"""The checks, in the order they run: the cheap training paths first, compiling last, so that a run
that hits its time budget has validated the most before it stops."""

from __future__ import annotations

from bench.gpu_check.deployment import check_deployment_modes
from bench.gpu_check.resume_and_ddp import (
    check_ddp_one_process_nccl,
    check_resume_cuda_rng,
)
from bench.gpu_check.runner import Check
from bench.gpu_check.throughput import check_bench_train
from bench.gpu_check.training import (
    check_channels_last_and_resident_batches,
    check_compile_step,
    check_train_bf16,
    check_train_fp16_scaler,
)

# Budgets in seconds: about three times what each took (CPU: 2 shared cores; CUDA: estimated for
# an H200, where the sum of what they really take must stay well under the run's 420 s).
CHECKS: tuple[Check, ...] = (
    Check("train_bf16", check_train_bf16, {"cpu": 40, "cuda": 60},
          what="2 epochs of train_model under the loop's autocast: finite loss and weights, val acc recorded"),
    Check("train_fp16_scaler", check_train_fp16_scaler, {"cpu": 30, "cuda": 30}, needs_cuda=True,
          what="train_model forced to fp16 autocast with the GradScaler (even where bf16 is supported)"),
    Check("channels_last_and_resident_batches", check_channels_last_and_resident_batches, {"cpu": 40, "cuda": 45},
          what="conv weights and batches channels-last, batches and the uint8 split on the device"),
    Check("resume_cuda_rng", check_resume_cuda_rng, {"cpu": 40, "cuda": 60},
          what="interrupted after epoch 1 and resumed = uninterrupted weights, CUDA RNG state restored"),
    Check("ddp_one_process_nccl", check_ddp_one_process_nccl, {"cpu": 60, "cuda": 90},
          what="1-process torchrun training through bench.train.launch (NCCL on CUDA), checkpoint loads"),
    Check("bench_train_resnet50", check_bench_train, {"cpu": 40, "cuda": 90},
          what="bench-train ratios (b)/(a) and (b)/(c); resnet50.scratch on CUDA, cnn0 32 px on the CPU"),
    Check("compile_step", check_compile_step, {"cpu": 60, "cuda": 120},
          what="compile_step=True trains to the same first-epoch loss as eager"),
    Check("deployment_modes", check_deployment_modes, {"cpu": 60, "cuda": 180},
          what="every deployment mode of a suite: a latency or an expected n/a, never an error"),
)

NAMES = tuple(check.name for check in CHECKS)
