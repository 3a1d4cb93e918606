"""The example scene folders are what the geotiff config reads."""

from data_builders.rs_multisource import example_scene
from data_builders.rs_multisource import rs_multisource_dataset_builder as rsms
from data_builders.rs_multisource import scenes as scenes_lib


def test_example_scenes_are_found_as_scene_folders_with_clouds(tmp_path):
  folders = example_scene.write_example_scenes(str(tmp_path), scenes=2,
                                               size=48, clouds=0.3)
  assert [f.rsplit("/", 1)[-1] for f in folders] == ["scene_0", "scene_1"]
  config = rsms.GEOTIFF
  names = scenes_lib.source_names(("clouds",))
  found = scenes_lib.find_scenes(tmp_path, names, config.all_patterns)
  assert [scene.scene_id for scene in found] == ["scene_0", "scene_1"]
  for scene in found:
    assert set(scene.paths) == set(names)
