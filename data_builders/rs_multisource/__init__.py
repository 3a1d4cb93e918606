"""rs_multisource dataset: registered multi-source remote-sensing tiles."""
