"""The benchmark runner: for each suite entry, train or load, evaluate, measure, write a row."""
