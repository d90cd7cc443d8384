"""Architecture builders. They know nothing about datasets, suites or reports."""
