"""Running LLM work over records: the run directory, append-only journals, progress."""
