"""How rsjax keeps things on disk: atomic writes (`atomic`), a run's Orbax
checkpoints (`checkpoint`), the config a workdir was trained with
(`run_config`), the lock a training run holds on its workdir
(`workdir_lock`), local paths apart from object-store URIs (`paths`) and
local copies of remote input files (`staging`). Below everything that
writes: it imports nothing of rsjax above it."""
