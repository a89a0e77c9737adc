"""TensorBoard logging writes real event files that TensorBoard can read back."""

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from speechprune.training.dashboard import flatten, log_hparams, log_scalars, open_writer


def test_flatten_makes_dotted_keys_and_strings_of_lists():
    flat = flatten({"model": {"hidden": 8, "strides": [[2, 2]]}, "pruning": {"baseline": None}})
    assert flat == {"model.hidden": 8, "model.strides": "[[2, 2]]", "pruning.baseline": "None"}


def test_scalars_and_hparams_land_in_one_event_file(tmp_path):
    writer = open_writer(tmp_path, resume_step=0)
    log_scalars(writer, {"train/loss": 2.5}, step=3)
    log_hparams(writer, {"model": {"hidden": 8}}, {"hparams/test_wer": 12.0}, step=3)
    writer.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert events.Scalars("train/loss")[0].value == 2.5
    assert events.Scalars("hparams/test_wer")[0].value == 12.0
    plugin = events.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in plugin and "_hparams_/session_start_info" in plugin
