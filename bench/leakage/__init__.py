"""How much of a test score is memory: similarity of each test image to the training split,
duplicate groups, the leak-free (clean) split, and accuracy per similarity band.

The audit (bench/audit) writes a report for people; this package gives the runner the same
facts per image, cached per dataset fingerprint, so every leaderboard can show them.
"""
