"""After training: evaluation tables, full-scene inference, plots and experiments."""
