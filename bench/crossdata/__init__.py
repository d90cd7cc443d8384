"""Cross-dataset testing: every entry's checkpoint scored on other dataset folders it never saw
in training, after auditing those folders against the training split (public "external" sets
often contain the very same images)."""
