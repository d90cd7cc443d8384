"""The machine tag that names a results folder: device and precision, e.g. cpu-fp32, h100-amp."""

from __future__ import annotations

import re

import torch


def machine_tag(device: torch.device) -> str:
    if device.type != "cuda":
        return f"{device.type}-fp32"
    name = torch.cuda.get_device_name(device).lower()
    # "NVIDIA H100 80GB HBM3" -> "h100"; "NVIDIA GeForce RTX 4090" -> "rtx4090"
    match = re.search(r"\b(rtx\s?\d{4}\w*|[a-z]\d{2,4}\w*)\b", name.replace("nvidia", ""))
    short = match.group(1).replace(" ", "") if match else re.sub(r"\W+", "", name)[:16]
    return f"{short}-amp"  # CUDA training and evaluation run under autocast (bf16 or fp16)
