import pytest

from pruning.pruning_fixtures import TinySpeechModel
from speechprune.pruning.groups import select_group_parameters

PAPER_GROUPS = {"recurrent": ["*weight_hh*"], "input": ["*weight_ih*"], "fc": ["fc.*weight"]}


@pytest.mark.parametrize("rnn_type", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_paper_groups_select_exactly_recurrent_input_and_fc_matrices(rnn_type, bidirectional):
    model = TinySpeechModel(rnn_type, bidirectional=bidirectional, layers=2)
    selected = select_group_parameters(model, PAPER_GROUPS)
    names = {group: [name for name, _ in members] for group, members in selected.items()}
    suffixes = ["_l0", "_l0_reverse"] if bidirectional else ["_l0"]
    assert names["recurrent"] == [f"rnns.{i}.weight_hh{s}" for i in range(2) for s in suffixes]
    assert names["input"] == [f"rnns.{i}.weight_ih{s}" for i in range(2) for s in suffixes]
    # fc.0 is batch norm (1-D weight): skipped by matrices_only; conv and biases are never selected.
    assert names["fc"] == ["fc.1.weight"]
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[rnn_type]
    assert all(p.shape[0] == gates * 16 for _, p in selected["recurrent"])


def test_vectors_are_selected_when_matrices_only_is_off():
    model = TinySpeechModel("gru", bidirectional=False)
    selected = select_group_parameters(model, {"fc": ["fc.*weight"]}, {"fc": False})
    assert [name for name, _ in selected["fc"]] == ["fc.0.weight", "fc.1.weight"]


def test_group_matching_nothing_names_the_group_and_key():
    with pytest.raises(ValueError, match=r"pruning\.groups\.decoder\.patterns.*match no parameter"):
        select_group_parameters(TinySpeechModel(), {"decoder": ["decoder.*"]})


def test_parameter_in_two_groups_is_refused():
    with pytest.raises(ValueError, match=r"pruning\.groups\.all_rnn\.patterns: parameter 'rnns\.0\.weight_hh_l0' is already in group 'recurrent'"):
        select_group_parameters(TinySpeechModel(), {"recurrent": ["*weight_hh*"], "all_rnn": ["rnns.*"]})
