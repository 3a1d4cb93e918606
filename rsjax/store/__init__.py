"""How rsjax keeps things on disk: atomic writes (`atomic`), a run's Orbax
checkpoints (`checkpoint`), the config a workdir was trained with
(`run_config`) and the lock a training run holds on its workdir
(`workdir_lock`). Below everything that writes: it imports nothing of rsjax."""
