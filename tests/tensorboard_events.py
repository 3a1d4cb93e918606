"""What TensorBoard event files in a folder hold, read back with TensorFlow."""

import os


def tags(folder) -> dict:
  """{step: tags} of the image and text summaries in the event files of
  `folder`, and {'hparams': names} of its hparams session."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorboard.plugins.hparams import plugin_data_pb2  # pylint: disable=g-import-not-at-top
  found = {"hparams": set()}
  for name in os.listdir(folder):
    if not name.startswith("events.out.tfevents"):
      continue
    for event in tf.compat.v1.train.summary_iterator(
        os.path.join(folder, name)):
      for value in event.summary.value:
        plugin = value.metadata.plugin_data.plugin_name
        if plugin in ("images", "text"):
          found.setdefault(event.step, set()).add(value.tag)
        elif plugin == "hparams":
          data = plugin_data_pb2.HParamsPluginData.FromString(
              value.metadata.plugin_data.content)
          found["hparams"] |= set(data.session_start_info.hparams)
  return found
