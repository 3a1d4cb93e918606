"""What a user sees for a mistake on the command line or in the data (issue
18, "one error style"): a short message naming the key or dataset, status 1,
no traceback, and no workdir left behind.

- Unknown config keys: `launch.user_errors.parse_flags` (in-process, on a
  fresh set of flags, one case per kind of typo) and each launcher that
  takes --config (launch.train, launch.experiment, launch.evaluate; as
  processes, which stop before importing JAX) name the key as given and the
  closest valid keys. A None-default key takes a value of its declared type
  only; a config file is found by path or by name from any directory, and
  one that is neither is refused naming the configs (in-process).
- A dataset that is not built or too small: the trainer raises before it
  creates the workdir (in-process), evaluation and the experiments raise the
  same, and launch.train prints the dataset, data_dir and the command that
  builds it, and leaves no workdir (one process).
"""

import os
import re
import sys

import ml_collections
import pytest
from absl import flags
from ml_collections import config_flags

import train_processes
from data_builders import prepare
from launch import user_errors
from rsjax.data import tfds_builder
from rsjax.eval.experiments import augmentation
from rsjax.eval.report import evaluate
from rsjax.train import trainer
from tiny_configs import tiny_rs_spade

PIX2PIX = "configs/pix2pix.py"
HELP = "Pass --helpshort or --helpfull to see help on flags."


def _parse(argv):
  """`user_errors.parse_flags(argv)` on a fresh set of flags holding only
  --config; returns the flags."""
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "config file",
                                  flag_values=values, lock_config=True,
                                  sys_argv=argv)
  user_errors.parse_flags(argv, values)
  return values


def _refused(capsys, argv) -> list[str]:
  """The lines absl's style prints for a refused command line (status 1)."""
  with pytest.raises(SystemExit) as raised:
    _parse(argv)
  assert raised.value.code == 1
  lines = capsys.readouterr().err.splitlines()
  assert lines[-1] == HELP
  return lines[:-1]


KEYS = ["checkpoint_every", "data", "dtype", "ema_decay", "epochs",
        "eval_every", "eval_split", "fsdp_min_size", "grad_reduce_dtype", "inputs",
        "keep_checkpoints",
        "log_every", "loss", "mesh", "model", "num_classes",
        "num_eval_batches", "optimizer", "seed", "system", "target",
        "total_steps"]
# (override, the key as given, what follows it: the closest valid keys, or
# with none close the keys of the deepest group that exists).
TYPOS = [
    ("--config.model.genrator=unet", "model.genrator",
     "closest valid keys: model.generator, model.generator_kwargs"),
    ("--config.data.batchsize=4", "data.batchsize",
     "closest valid keys: data.batch_size, data.eval_batch_size"),
    ("--noconfig.data.shufle", "data.shufle",
     "closest valid keys: data.shuffle, data.shuffle_buffer"),
    # model.generator is a name (str), not a group of keys.
    ("--config.model.generator.depth=2", "model.generator.depth",
     "closest valid keys: model.generator, model.generator_kwargs"),
    ("--config.nothere=1", "nothere", "keys of the config: " + ", ".join(KEYS)),
    ("--config.foo.bar=1", "foo.bar", "keys of the config: " + ", ".join(KEYS)),
    ("--config.data.xyzzy=1", "data.xyzzy", "keys of config.data: augment, "),
]


@pytest.mark.parametrize("override, key, suggestion", TYPOS)
def test_an_unknown_config_key_is_named_with_the_closest_keys(
    capsys, override, key, suggestion):
  lines = _refused(capsys, ["prog", f"--config={PIX2PIX}", override])
  assert len(lines) == 1
  assert lines[0].startswith(f"FATAL Flags parsing error: unknown config key "
                             f"{key!r} ({override}); {suggestion}")


def test_every_unknown_key_of_a_command_line_is_named(capsys):
  lines = _refused(capsys, ["prog", "--config", PIX2PIX, "--config.seed=3",
                            "--config.sed=1", "--config.model.genrator=unet"])
  assert len(lines) == 1
  assert re.fullmatch(
      r"FATAL Flags parsing error: unknown config key 'sed' \(--config.sed=1\)"
      r"; closest valid keys: seed.*; unknown config key 'model.genrator' "
      r"\(--config.model.genrator=unet\); closest valid keys: "
      r"model.generator.*", lines[0])


def test_valid_overrides_parse_and_bad_values_keep_absl_message(capsys):
  values = _parse(["prog", f"--config={PIX2PIX}", "--config.seed=3",
                   "--config.model.generator=unet", "--noconfig.data.shuffle"])
  config = values["config"].value
  assert (config.seed, config.model.generator, config.data.shuffle) == (
      3, "unet", False)
  lines = _refused(capsys, ["prog", f"--config={PIX2PIX}",
                            "--config.data.batch_size=abc"])
  assert lines == ["FATAL Flags parsing error: flag "
                   "--config.data.batch_size=abc: invalid literal for int() "
                   "with base 10: 'abc'"]


def test_a_key_whose_default_is_none_takes_its_type_only(capsys):
  """configs.common.optional: the command line sets a None-default key to a
  value of its declared type, and refuses another naming the key."""
  config = _parse(["prog", "--config=configs/rs_spade.py",
                   "--config.num_eval_batches=4",
                   "--config.data.train_arrays=/arrays",
                   "--config.model.generator_kwargs.fused_modulation=false"]
                  )["config"].value
  assert (config.num_eval_batches, config.data.train_arrays,
          config.model.generator_kwargs.fused_modulation) == (4, "/arrays",
                                                               False)
  lines = _refused(capsys, ["prog", f"--config={PIX2PIX}",
                            "--config.num_eval_batches=four"])
  assert lines == ["FATAL Flags parsing error: flag "
                   "--config.num_eval_batches=four: invalid literal for int() "
                   "with base 10: 'four'"]


@pytest.mark.parametrize("given", [
    "pix2pix:demo", "pix2pix.py:demo", "configs/pix2pix.py:demo",
    "{root}/configs/pix2pix.py:demo"])
def test_a_config_of_the_project_is_found_by_name_from_any_directory(
    tmp_path, monkeypatch, given):
  monkeypatch.chdir(tmp_path)
  argv = ["prog", "--config", given.format(root=train_processes.ROOT),
          "--config.seed=3"]
  config = _parse(argv)["config"].value
  assert (config.model.generator, config.data.batch_size, config.seed) == (
      "unet", 4, 3)


def test_a_config_file_of_the_current_directory_comes_first(tmp_path,
                                                            monkeypatch):
  (tmp_path / "configs").mkdir()
  (tmp_path / "configs" / "pix2pix.py").write_text(
      "import ml_collections\n"
      "def get_config(arg=None):\n"
      "  return ml_collections.ConfigDict({'mine': arg})\n")
  monkeypatch.chdir(tmp_path)
  assert _parse(["prog", "--config=configs/pix2pix.py:x"])[
      "config"].value.mine == "x"


def test_a_config_that_is_no_file_and_no_name_is_refused(capsys, tmp_path,
                                                         monkeypatch):
  monkeypatch.chdir(tmp_path)
  lines = _refused(capsys, ["prog", "--config=pix2px:demo", "--config.seed=1"])
  assert lines == [
      f"FATAL Flags parsing error: --config=pix2px:demo: no file 'pix2px' in "
      f"{os.getcwd()} and no config of this project named so; its configs, by "
      f"name (e.g. --config rs_spade:demo): augment, cloud_removal, csebgan, "
      f"cycle_fusion, fusion_seg, fusion_study, pix2pix, rs_spade, "
      f"spade_reference, unet_seg"]


def test_an_unknown_variant_names_the_valid_ones(capsys):
  message = "\n".join(_refused(capsys,
                               ["prog", f"--config={PIX2PIX}:demoo"]))
  assert message.startswith("FATAL Flags parsing error:\n")
  assert ("configs/pix2pix.py: unknown variant 'demoo' in arg 'demoo'; valid "
          "parts, comma-separated: one of s1, lulc, lulc+s1, lulc+dem, "
          "s1+dem, s1+lulc+dem (sources; default s1+lulc+dem); one of "
          "sen12ms (dataset; none); demo"
          ) in message


def test_key_paths_and_closest_keys():
  config = ml_collections.ConfigDict(
      {"model": {"generator": "unet", "kwargs": {"ngf": 2}}, "seed": 0,
       "plain": {"a": 1}})
  assert user_errors.key_paths(config) == [
      "model", "model.generator", "model.kwargs", "model.kwargs.ngf", "plain",
      "plain.a", "seed"]
  for key in ("model", "model.kwargs.ngf", "plain.a", "seed", "model.kwargs",
              "plain.a[0]"):
    assert user_errors.has_key(config, key), key
  for key in ("modle", "model.ngf", "model.generator.x", "seed.x", "x.y"):
    assert not user_errors.has_key(config, key), key
  assert user_errors.closest_keys(config, "model.kwargs.ngg") == [
      "model.kwargs.ngf"]
  assert user_errors.closest_keys(config, "model.kwarg") == [
      "model.kwargs", "model.kwargs.ngf"]
  assert user_errors.closest_keys(config, "zzz") == []
  # 'model' is as close to 'model.qqqqq' as difflib asks, but holds it.
  assert user_errors.closest_keys(config, "model.qqqqq") == []
  assert user_errors.closest_keys(config, "modelqqqqq") == ["model"]
  assert user_errors.unknown_key_message(
      config, "model.qqqqq", "--c.model.qqqqq") == (
          "unknown config key 'model.qqqqq' (--c.model.qqqqq); keys of "
          "config.model: generator, kwargs")


@pytest.mark.parametrize("module, args, key, closest", [
    ("launch.train", ["--workdir", "{workdir}"], "model.genrator",
     "model.generator"),
    ("launch.evaluate", ["--workdir", "{workdir}"], "model.genrator",
     "model.generator"),
    ("launch.experiment", ["--workdir", "{workdir}"],
     "segmentation.data.data_dr", "segmentation.data.data_dir"),
])
def test_each_launcher_refuses_an_unknown_key_before_making_anything(
    tmp_path, module, args, key, closest):
  workdir = tmp_path / "workdir"
  config = (PIX2PIX if module != "launch.experiment"
            else "configs/fusion_study.py:demo")
  override = f"--config.{key}=x"
  result = train_processes.run_launcher(
      module, f"--config={config}", override,
      *[a.format(workdir=workdir) for a in args], timeout=120)
  assert result.returncode == 1
  lines = result.stderr.splitlines()
  assert len(lines) == 2 and lines[1] == HELP, result.stderr
  assert lines[0].startswith(
      f"FATAL Flags parsing error: unknown config key {key!r} ({override}); "
      f"closest valid keys: {closest}")
  assert not workdir.exists()


@pytest.mark.parametrize("module", ["launch.train", "launch.evaluate"])
def test_process_flags_without_distributed_are_refused(tmp_path, module):
  workdir = tmp_path / "workdir"
  result = train_processes.run_launcher(
      module, f"--config={PIX2PIX}", f"--workdir={workdir}", "--process_id=1",
      timeout=120)
  assert result.returncode == 1
  assert ("--coordinator_address, --num_processes and --process_id only "
          "apply with --distributed") in result.stderr, result.stderr
  assert not workdir.exists()


# ------------------------------------------------------- missing datasets --

def test_build_commands():
  python = os.path.relpath(sys.executable)  # run from the repository root
  assert prepare.build_command("rs_multisource/synthetic", "w/tfds") == (
      f"{python} -m data_builders.prepare rs_multisource/synthetic "
      "--data_dir w/tfds")
  assert prepare.build_command("sen12ms_cr/all:1.0.0", "my data") == (
      f"{python} -m data_builders.prepare sen12ms_cr/all:1.0.0 --data_dir "
      f"'my data' --manual_dir {prepare.MANUAL_DIR}")
  assert prepare.build_command("rs_multisource/geotiff", None).endswith(
      "rs_multisource/geotiff --manual_dir <your data: see the builder's "
      "MANUAL_DOWNLOAD_INSTRUCTIONS>")
  assert prepare.build_command("mnist", "d") == (
      "tfds build mnist --data_dir d --file_format array_record")
  assert prepare.build_command("glue/cola", None) == (
      "tfds build glue --config cola --file_format array_record")


def test_dataset_messages_add_the_build_command():
  missing = tfds_builder.DatasetNotBuilt("rs_multisource/synthetic", "d",
                                         "/abs/d/rs_multisource/synthetic")
  command = prepare.build_command("rs_multisource/synthetic", "d")
  assert user_errors.dataset_message(missing) == (
      f"{missing}\nBuild it with:\n  {command}")
  # An evaluation names the config key, the dataset error is its cause.
  try:
    raise ValueError(f"config.data.name: {missing}") from missing
  except ValueError as wrapped:
    assert user_errors.dataset_message(wrapped) == (
        f"config.data.name: {missing}\nBuild it with:\n  {command}")
  few = tfds_builder.TooFewExamples("d/c", "train", 3, 8)
  assert user_errors.dataset_message(few) == str(few)
  lacking = tfds_builder.MissingSplit("dataset 'd/c' has no split 'tset'")
  assert user_errors.dataset_message(lacking) == (
      "dataset 'd/c' has no split 'tset'")
  assert user_errors.dataset_message(ValueError("other")) is None
  assert user_errors.dataset_message(KeyError("other")) is None


def test_launchers_exit_1_on_dataset_errors_and_raise_the_rest(caplog):
  def main_raising(error):
    def main(argv):
      del argv
      raise error
    return user_errors.reporting_dataset_errors(main)

  for error in (tfds_builder.TooFewExamples("d/c", "train", 3, 8),
                tfds_builder.MissingSplit("dataset 'd/c' has no split 'x'"),
                tfds_builder.DatasetNotBuilt("d/c", "dd", "/dd/d/c")):
    assert main_raising(error)(["prog"]) == 1
    assert str(error) in caplog.text
  for error in (ValueError("other"), KeyError("other"), OSError("other")):
    with pytest.raises(type(error), match="other"):
      main_raising(error)(["prog"])


def _tiny(data_dir, **data):
  config = tiny_rs_spade(data_dir)
  config.data.update(data)
  return config


@pytest.mark.parametrize("existing", [False, True])
def test_training_on_a_missing_dataset_makes_no_workdir(tmp_path, existing):
  workdir = tmp_path / "run"
  if existing:  # a workdir of an earlier run: left as it was
    workdir.mkdir()
    (workdir / "notes.txt").write_text("mine")
  with pytest.raises(tfds_builder.DatasetNotBuilt,
                     match="rs_multisource/synthetic_tiny"):
    trainer.train_and_evaluate(_tiny(str(tmp_path / "no_data")), str(workdir))
  assert (sorted(os.listdir(workdir)) == ["notes.txt"] if existing
          else not workdir.exists())
  assert not (tmp_path / "no_data").exists()


def test_training_with_too_few_examples_makes_no_workdir(tmp_path,
                                                         synthetic_tiny):
  workdir = tmp_path / "run"
  with pytest.raises(tfds_builder.TooFewExamples,
                     match=r"split 'train' .* 20 example\(s\).*batch_size=24"):
    trainer.train_and_evaluate(_tiny(synthetic_tiny, batch_size=24),
                               str(workdir))
  assert not workdir.exists()


def test_evaluation_and_experiments_name_a_missing_dataset(tmp_path):
  config = _tiny(str(tmp_path / "no_data"))
  with pytest.raises(ValueError, match="^config.data.name: dataset ") as raised:
    evaluate.check_split(config, "test")
  assert isinstance(raised.value.__cause__, tfds_builder.DatasetNotBuilt)
  with pytest.raises(tfds_builder.DatasetNotBuilt, match="synthetic_tiny"):
    augmentation.tile_size(config.data)


def test_launch_train_on_a_missing_dataset_says_how_to_build_it(tmp_path):
  config = train_processes.config_file(
      tmp_path, 1, **{"data.source": "tfds",
                      "data.name": "rs_multisource/synthetic_tiny",
                      "data.data_dir": str(tmp_path / "no_data")})
  workdir = tmp_path / "run"
  result = train_processes.run(config, workdir, timeout=300)
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  assert "Available datasets" not in result.stderr
  data_dir = str(tmp_path / "no_data")
  error = result.stderr[result.stderr.index("dataset 'rs_multisource"):]
  assert error.splitlines() == [
      f"dataset 'rs_multisource/synthetic_tiny' is not built in data_dir "
      f"{data_dir!r}: no prepared version under "
      f"{os.path.join(data_dir, 'rs_multisource', 'synthetic_tiny')}.",
      "Build it with:",
      f"  {prepare.build_command('rs_multisource/synthetic_tiny', data_dir)}"]
  assert not workdir.exists()
