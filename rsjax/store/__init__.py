"""How rsjax keeps things on disk: atomic writes (`atomic`), a run's Orbax
checkpoints (`checkpoint`) and the config a workdir was trained with
(`run_config`). Below everything that writes: it imports nothing of rsjax."""
