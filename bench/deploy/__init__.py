"""Deployment modes (eager variants, TorchScript, torch.compile, ONNX Runtime, TensorRT), each
checked against eager on real images and timed by the same code as eager efficiency."""

from bench.deploy.agreement import AGREEMENT_THRESHOLD
from bench.deploy.modes import DEFAULT_MODES, MODES
from bench.deploy.prepared import ModeUnavailable, Prepared
from bench.deploy.row import deployment_row

__all__ = ["AGREEMENT_THRESHOLD", "DEFAULT_MODES", "MODES", "ModeUnavailable", "Prepared", "deployment_row"]
