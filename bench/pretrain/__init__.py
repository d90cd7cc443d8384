"""Self-supervised pretraining (MoCo v2) of an entry's backbone, and a linear probe to judge it.

    backbone.py         split a classifier into backbone + head; load a backbone back into one
    moco_augment.py     MoCo v2 views for grayscale MRI, batched and seeded
    mocov2.py           the MoCo v2 model: query/key encoders, queue, InfoNCE loss
    pretrain_loop.py    the pretraining loop over the training part of Training
    get_or_pretrain.py  load the stored backbone (keyed by bench.identity), or pretrain and store it
    linear_probe.py     frozen features -> logistic regression -> test accuracy
"""
