"""aidsafe, distilabel and Bespoke Curator side by side on one workload: `python -m benchmarks.peers`."""
