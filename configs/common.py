"""The keys every experiment config shares (ml_collections); data, not code.

Each system's config file starts from `base_config(system)` and adds its own
keys (inputs, model, loss weights, optimizer entries, EMA, ...); see the
system's config file. Shared keys:

  system            name in rsjax.systems.base.SYSTEMS
  seed              model init and step RNG
  dtype             compute dtype ('float32' | 'bfloat16'); params are float32
  grad_reduce_dtype with a bfloat16 dtype, the dtype weight gradients are
                    computed and all-reduced in: 'float32' (default) or
                    'bfloat16' (rsjax.nn.mixed_precision)
  mesh              ((axis name, size), ...); -1 = remaining devices
  fsdp_min_size     with an 'fsdp' axis > 1, parameter and optimizer arrays
                    of at least this many elements are sharded over it
  data              the input pipeline's config (rsjax.data.pipeline), every
                    key spelled out with the pipeline's default except the
                    dataset (name, data_dir) and fields; `DATA_OVERRIDES`
  num_classes       classes of the land-cover field (Dynamic World: 9)
  model, loss       empty here; the system's config fills them
  optimizer         one `adam(...)` entry per network, added by the system
  epochs            training length in epochs of the training split, where
                    a paper states one (cite it beside the value); the
                    trainer derives total_steps = epochs x floor(examples /
                    data.batch_size) once the dataset is known
                    (rsjax.train.training_length). None (the default) or 0:
                    train total_steps. A config with epochs leaves
                    total_steps None; both set and disagreeing is an error
  total_steps, log_every, eval_every, checkpoint_every, keep_checkpoints,
  num_eval_batches (None = the whole split), eval_split (the split the
  trainer evaluates on every eval_every steps)

A key whose default is None is `optional(<type>)`, so that the command line
can set it (`--config.num_eval_batches=4`; ml_collections cannot override a
bare None, whose type it does not know); tests/configs checks that every
config and variant has no other None.

Configs import nothing from rsjax: models, losses and fields are names.
"""

from __future__ import annotations

import ml_collections

SYNTHETIC_DATASET = "rs_multisource/synthetic"
DEMO_DATA_DIR = "workdir/tensorflow_datasets"
DEFAULT_FIELDS = ("s2", "s1", "lulc", "dem", "valid")


def optional(field_type: type) -> ml_collections.FieldReference:
  """A key that is None by default and takes a `field_type` value: from the
  command line as well (a value of another type is refused naming the key).
  `object` takes any Python literal there and any value in a config file."""
  return ml_collections.FieldReference(None, field_type=field_type)


DATA_OVERRIDES = ("name", "data_dir")
"""The data keys whose value here differs from rsjax.data.pipeline's
default_config(); every other data key has the pipeline's default (checked by
tests/configs/test_configs.py). The pipeline's `eval_split` is not here: the
trainer evaluates on the top-level `config.eval_split`."""


def data_config() -> ml_collections.ConfigDict:
  """Every key of the pipeline's data config: its defaults, the demo dataset."""
  return ml_collections.ConfigDict({
      "source": "tfds",                       # 'tfds' | 'memory'
      "name": SYNTHETIC_DATASET,
      "data_dir": DEMO_DATA_DIR,
      "split": "train",
      "batch_size": 8,                        # global, over all processes
      "eval_batch_size": optional(int),       # None: batch_size
      "fields": DEFAULT_FIELDS,
      # None: each field's declared bands (S2 B2, B3, B4, B8; S1 VV, VH),
      # picked by name from what the dataset holds; {field: band names}
      # picks others, e.g. {'s2': ('B2', 'B3', 'B4')} for SEN1-2's RGB.
      "bands": optional(object),
      "normalize": True,
      # None: rsjax.data.normalize's defaults; a mapping {source: {key:
      # value}} overlays them (a dict literal on the command line).
      "normalization": optional(object),
      "augment": "none",                      # 'none' (the papers) | 'flips' | 'dihedral'
      "shuffle": True,
      "shuffle_buffer": 1024,                 # tf_data read mode only
      "seed": 0,
      "read_mode": "auto",                    # 'auto' | 'random_access' | 'tf_data' | 'grain'
      "read_threads": 8,
      "read_workers": 0,                      # grain read mode: worker processes
      "prefetch": 2,
      "tile_size": 256,                       # memory source only
      "memory_examples": 64,                  # memory source only
      "train_arrays": optional(str),          # dir of <field>.npy: train data
      "train_rows": optional(str),            # .npy of row indices into it
  })


def base_config(system: str) -> ml_collections.ConfigDict:
  """The shared keys of a `system` config (see the module docstring)."""
  config = ml_collections.ConfigDict()
  config.system = system
  config.seed = 0
  config.dtype = "float32"
  config.grad_reduce_dtype = "float32"
  config.mesh = (("data", -1), ("fsdp", 1))
  config.fsdp_min_size = 2**18        # = rsjax.mesh.FSDP_MIN_SIZE
  config.data = data_config()
  config.num_classes = 9              # Dynamic World LULC
  config.model = ml_collections.ConfigDict()
  config.loss = ml_collections.ConfigDict()
  config.optimizer = ml_collections.ConfigDict()

  config.epochs = optional(int)       # None: train total_steps
  config.total_steps = 1000
  config.log_every = 50
  config.eval_every = 500
  config.checkpoint_every = 500
  config.keep_checkpoints = 3
  config.num_eval_batches = optional(int)
  config.eval_split = "validation"
  return config


def adam(lr: float = 2e-4, b1: float = 0.5, b2: float = 0.999,
         decay_start: float = 0.5) -> ml_collections.ConfigDict:
  """One network's optimizer entry (rsjax.systems.base.adam): Adam at `lr`,
  constant until `decay_start` x total_steps, then linear decay to 0."""
  return ml_collections.ConfigDict(
      dict(lr=lr, b1=b1, b2=b2, decay_start=decay_start))


def apply_demo(config: ml_collections.ConfigDict) -> None:
  """Shrinks a paper-sized config to a few minutes on 2 CPU cores."""
  for key in ("generator_kwargs", "discriminator_kwargs"):
    kwargs = config.model.get(key, {})
    for width in ("ngf", "ndf"):
      if width in kwargs:
        kwargs[width] = 8
  generator = config.model.get("generator")
  if generator in ("rs_spade", "spade", "senet"):
    # The modulation MLPs run at every resolution: the main CPU cost.
    hidden = "mlp_hidden" if generator == "senet" else "hidden"
    config.model.generator_kwargs[hidden] = 16
    if generator == "rs_spade":
      config.model.generator_kwargs.embed_features = 8
  config.data.batch_size = 4
  config.data.eval_batch_size = 8
  config.epochs = None                # the demo counts steps
  config.total_steps = 150
  config.log_every = 25
  config.eval_every = 150
  config.checkpoint_every = 50
  config.keep_checkpoints = 2
