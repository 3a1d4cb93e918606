"""Evaluation reports: trained workdirs -> one metric table in their paper's
layout (`evaluate`, `tables`), with sample grids and training curves
(`plots`)."""
