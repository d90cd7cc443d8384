"""Tumour segmentation: masks, metrics, pictures and the segmentation runner."""
