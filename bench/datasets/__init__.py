"""The dataset declarations brainbench ships (*.toml); read by bench.data.declaration."""
