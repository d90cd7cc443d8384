"""brainbench's bench package: what we DO with zoo models (data, training, evaluation, reports, CLI).

`bench` imports `zoo`; `zoo` never imports `bench`.
"""
