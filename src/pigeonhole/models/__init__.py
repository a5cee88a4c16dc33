"""Backbones, pretrained weights and the networks built from them."""
