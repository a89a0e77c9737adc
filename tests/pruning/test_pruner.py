import pytest
import torch

from pruning.pruning_fixtures import TinySpeechModel, default_groups, pruning_config, train_steps
from speechprune.pruning import build_pruner, sparsity_report
from speechprune.pruning.schedules import narang_threshold

TOTAL_STEPS = 60
NARANG = {"start_itr": "10", "ramp_itr": "30", "end_itr": "50", "freq": 5}


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)


def build(model, method="narang", total_steps=TOTAL_STEPS, **group_keys):
    keys = dict(NARANG)
    keys.update(group_keys)
    return build_pruner(model, pruning_config(method, default_groups(**keys)), total_steps, steps_per_epoch=10)


def test_threshold_follows_the_formula_at_the_breakpoints_and_only_on_update_steps(gru_model):
    pruner = build(gru_model, start_slope=0.02, ramp_slope=0.03)
    schedule = pruner.groups[0].schedule
    seen = {}
    with torch.no_grad():
        for itr in range(TOTAL_STEPS):
            pruner.step(itr)
            seen[itr] = pruner.scalars()["threshold/recurrent"]
    expected = lambda itr: narang_threshold(itr, schedule, 0.02, 0.03)  # noqa: E731
    assert seen[0] == seen[10] == 0.0  # before and at start_itr: nothing yet
    assert seen[15] == pytest.approx(0.02 * 6 / 5)  # first update
    assert seen[17] == seen[15]  # between updates the threshold holds
    assert seen[30] == pytest.approx((0.02 * 21 + 0.03 * 1) / 5) == pytest.approx(expected(30))  # at ramp
    assert seen[45] == pytest.approx((0.02 * 21 + 0.03 * 16) / 5)  # last update before end
    assert seen[50] == seen[59] == seen[45]  # frozen from end_itr on


def test_narang_prunes_exactly_the_weights_at_or_below_the_threshold(gru_model):
    pruner = build(gru_model, start_slope=0.02, ramp_slope=0.03)
    before = {m.name: m.param.detach().clone() for g in pruner.groups for m in g.matrices}
    for itr in range(16):
        pruner.step(itr)  # frozen weights: only the update at 15 prunes
    eps = 0.02 * 6 / 5
    for group in pruner.groups:
        for matrix in group.matrices:
            assert torch.equal(matrix.mask, before[matrix.name].abs() > eps)
            assert torch.equal(matrix.param.detach(), before[matrix.name] * (before[matrix.name].abs() > eps))


@pytest.mark.parametrize("make_optimizer", [sgd, lambda m: torch.optim.AdamW(m.parameters(), lr=0.01, weight_decay=0.1)])
def test_pruned_weights_stay_exactly_zero_through_optimizer_steps(gru_model, make_optimizer):
    pruner = build(gru_model, start_slope=0.05, ramp_slope=0.08)
    optimizer = make_optimizer(gru_model)
    train_steps(gru_model, optimizer, pruner, range(TOTAL_STEPS))
    for group in pruner.groups:
        for matrix in group.matrices:
            assert (~matrix.mask).any()
            assert torch.count_nonzero(matrix.param.detach()[~matrix.mask]) == 0


def test_masks_are_applied_in_place_in_the_storage_the_rnn_kernels_read(gru_model):
    # cuDNN runs an RNN from one flat weight buffer whose views are the parameters; a pruner
    # that rebound `param.data` would leave that buffer (and the pruned weights in it) stale.
    storage = {name: p.data_ptr() for name, p in gru_model.named_parameters()}
    pruner = build(gru_model, start_slope=0.05, ramp_slope=0.08)
    train_steps(gru_model, sgd(gru_model), pruner, range(TOTAL_STEPS))
    assert {name: p.data_ptr() for name, p in gru_model.named_parameters()} == storage
    for rnn in gru_model.rnns:
        for name, flat in zip(rnn._flat_weights_names, rnn._flat_weights):
            assert flat is getattr(rnn, name)
    assert all((~m.mask).any() for g in pruner.groups for m in g.matrices)


def test_masks_only_shrink_and_sparsity_is_monotone_while_training(gru_model):
    pruner = build(gru_model)  # slopes from Eq. 1 on the model's own weights at start_itr
    optimizer = sgd(gru_model)
    previous = {m.name: m.mask.clone() for g in pruner.groups for m in g.matrices}
    sparsities = []
    for itr in range(TOTAL_STEPS):
        train_steps(gru_model, optimizer, pruner, range(itr, itr + 1))
        for group in pruner.groups:
            for matrix in group.matrices:
                assert not (matrix.mask & ~previous[matrix.name]).any(), "a pruned entry came back"
                previous[matrix.name] = matrix.mask.clone()
        sparsities.append(pruner.scalars()["sparsity/recurrent"])
    assert sparsities == sorted(sparsities) and sparsities[-1] > 0.5


def test_with_frozen_weights_eq1_prunes_the_chosen_percentile():
    torch.manual_seed(3)
    model = TinySpeechModel("gru", bidirectional=True, hidden=64, features=64)
    pruner = build(model, total_steps=400, start_itr="0", ramp_itr="100", end_itr="300", freq=1)
    for itr in range(400):
        pruner.step(itr)
    group = pruner.groups[0]
    last_eps = narang_threshold(299, group.schedule, group.matrices[0].start_slope, group.matrices[0].ramp_slope)
    assert group.matrices[0].threshold == pytest.approx(last_eps)
    for matrix in group.matrices:
        sparsity = float((~matrix.mask).float().mean())
        # The last update (itr 299) lands at q * (1 + 2 / 700): a hair above the 90th percentile.
        assert sparsity == pytest.approx(0.90, abs=0.005)


def run_with_resume(tmp_path, method, stop_at, **keys):
    """Train 60 steps in one go, and again stopping after `stop_at` and resuming from files."""

    def fresh():
        torch.manual_seed(0)
        model = TinySpeechModel("gru", bidirectional=True)
        return model, sgd(model), build(model, method, **keys)

    model, optimizer, pruner = fresh()
    train_steps(model, optimizer, pruner, range(TOTAL_STEPS))

    model_a, optimizer_a, pruner_a = fresh()
    train_steps(model_a, optimizer_a, pruner_a, range(stop_at + 1))
    path = tmp_path / "last.pt"
    torch.save({"model": model_a.state_dict(), "optim": optimizer_a.state_dict(), "pruner": pruner_a.state_dict()}, path)

    model_b, optimizer_b, pruner_b = fresh()
    checkpoint = torch.load(path, weights_only=True)
    model_b.load_state_dict(checkpoint["model"])
    optimizer_b.load_state_dict(checkpoint["optim"])
    pruner_b.load_state_dict(checkpoint["pruner"])
    train_steps(model_b, optimizer_b, pruner_b, range(stop_at + 1, TOTAL_STEPS))
    return (model, pruner), (model_b, pruner_b)


@pytest.mark.parametrize(
    "method, stop_at, keys",
    [("narang", 22, {}), ("narang", 5, {}), ("block", 33, {}), ("gradual", 27, {}), ("l1", 20, {"end_itr": "40"})],
)
def test_a_resumed_pruner_continues_exactly_like_an_uninterrupted_one(tmp_path, method, stop_at, keys):
    (model, pruner), (resumed_model, resumed_pruner) = run_with_resume(tmp_path, method, stop_at, **keys)
    for (name, p), (_, q) in zip(model.named_parameters(), resumed_model.named_parameters()):
        assert torch.equal(p, q), name
    for group, resumed_group in zip(pruner.groups, resumed_pruner.groups):
        for m, r in zip(group.matrices, resumed_group.matrices):
            assert torch.equal(m.mask, r.mask) and m.start_slope == r.start_slope and m.threshold == r.threshold
    assert pruner.scalars() == resumed_pruner.scalars()
    assert pruner.scalars()["sparsity/recurrent"] > 0.3


def test_state_of_another_method_is_refused(gru_model):
    state = build(gru_model, "narang").state_dict()
    with pytest.raises(ValueError, match=r"method 'narang' but this run uses pruning\.method='gradual'"):
        build(gru_model, "gradual").load_state_dict(state)


def test_state_saved_under_another_schedule_is_refused(gru_model):
    state = build(gru_model, "narang").state_dict()
    with pytest.raises(ValueError, match=r"group 'recurrent' was saved with .* \[10, 30, 50, 5\] steps.*\[10, 30, 50, 10\]"):
        build(gru_model, "narang", freq=10).load_state_dict(state)


@pytest.mark.parametrize("method", ["gradual", "oneshot", "l1"])
def test_target_methods_reach_the_target_sparsity_per_matrix(gru_model, method):
    pruner = build(gru_model, method, start_itr="5", end_itr="40", freq=5, target_sparsity=0.8)
    train_steps(gru_model, sgd(gru_model), pruner, range(TOTAL_STEPS))
    for group in pruner.groups:
        for matrix in group.matrices:
            # Exactly round(0.8 * numel) entries: within 1 / numel of the target.
            assert float((~matrix.mask).float().mean()) == pytest.approx(0.8, abs=1 / matrix.mask.numel())
            assert torch.count_nonzero(matrix.param.detach()) <= matrix.mask.sum()


@pytest.mark.parametrize("method", ["narang", "block", "gradual", "oneshot", "l1"])
def test_masks_are_final_from_end_itr_on_for_every_method(gru_model, method):
    # The training loop lets only final-mask evaluations compete for the best checkpoint.
    pruner = build(gru_model, method, target_sparsity=0.8)
    optimizer = sgd(gru_model)
    final_from, masks_then = None, None
    for itr in range(TOTAL_STEPS):
        train_steps(gru_model, optimizer, pruner, range(itr, itr + 1))
        if pruner.masks_final and final_from is None:
            final_from = itr
            masks_then = [m.mask.clone() for g in pruner.groups for m in g.matrices]
    assert final_from == 50  # NARANG's end_itr
    assert all(torch.equal(before, m.mask) for before, m in
               zip(masks_then, (m for g in pruner.groups for m in g.matrices)))
    assert 0.0 < pruner.scalars()["sparsity/recurrent"] < 1.0


def test_gradual_sparsity_follows_the_cubic_curve_and_oneshot_waits(gru_model):
    torch.manual_seed(0)
    other = TinySpeechModel("gru", bidirectional=True)
    gradual = build(gru_model, "gradual", start_itr="0", end_itr="40", freq=10, target_sparsity=0.8)
    oneshot = build(other, "oneshot", end_itr="40", target_sparsity=0.8)
    curve, cut = [], []
    for itr in range(TOTAL_STEPS):
        gradual.step(itr)
        oneshot.step(itr)
        curve.append(gradual.scalars()["sparsity/fc"])
        cut.append(oneshot.scalars()["sparsity/fc"])
    numel = 6 * 32
    assert curve[10] == pytest.approx(round((0.8 - 0.8 * 0.75**3) * numel) / numel)
    assert curve[39] == curve[30] < curve[40] == pytest.approx(0.8, abs=1 / numel)
    assert max(cut[:40]) == 0.0 and cut[40] == cut[-1] == pytest.approx(0.8, abs=1 / numel)


def test_block_pruning_removes_whole_blocks_with_padded_edges(gru_model):
    cfg = pruning_config("block", default_groups(**NARANG), block_shape=[4, 5])
    pruner = build_pruner(gru_model, cfg, TOTAL_STEPS, steps_per_epoch=10)
    train_steps(gru_model, sgd(gru_model), pruner, range(TOTAL_STEPS))
    for group in pruner.groups:
        for matrix in group.matrices:
            rows, cols = matrix.mask.shape  # e.g. (48, 16): 16 is not a multiple of 5
            for top in range(0, rows, 4):
                for left in range(0, cols, 5):
                    block = matrix.mask[top : top + 4, left : left + 5]  # edge blocks are smaller
                    assert block.all() or not block.any(), f"{matrix.name} block at ({top}, {left}) is split"
    assert 0.2 < pruner.scalars()["sparsity/recurrent"] < 1.0


def test_l1_penalty_is_a_differentiable_sum_of_group_magnitudes_inside_its_window(gru_model):
    cfg = pruning_config("l1", default_groups(start_itr="2", end_itr="5"), l1_strength=0.01)
    pruner = build_pruner(gru_model, cfg, TOTAL_STEPS, steps_per_epoch=10)
    pruner.step(0)
    assert pruner.regularization() == 0.0  # next step (1) is before start_itr
    pruner.step(1)
    penalty = pruner.regularization()
    expected = 0.01 * sum(m.param.abs().sum() for g in pruner.groups for m in g.matrices)
    assert penalty.item() == pytest.approx(expected.item())
    penalty.backward()
    weight = pruner.groups[0].matrices[0].param
    assert torch.allclose(weight.grad, 0.01 * weight.detach().sign())
    for itr in range(2, 5):
        pruner.step(itr)
    assert pruner.regularization() == 0.0  # step 5 = end_itr: the cut, no more penalty


def test_scalars_and_magnitudes_cover_groups_parameters_and_model_counts(gru_model):
    pruner = build(gru_model, start_slope=0.05, ramp_slope=0.08)
    for itr in range(TOTAL_STEPS):
        pruner.step(itr)
    scalars = pruner.scalars()
    total = sum(p.numel() for p in gru_model.parameters())
    nonzero = sum(int(torch.count_nonzero(p)) for p in gru_model.parameters())
    assert scalars["params/total"] == total and scalars["params/nonzero"] == nonzero
    assert scalars["params/pruned_groups_total"] == sum(m.mask.numel() for g in pruner.groups for m in g.matrices)
    assert scalars["sparsity/rnns.1.weight_hh_l0_reverse"] > 0
    assert {"threshold/recurrent", "threshold/input", "threshold/fc", "sparsity/fc"} <= scalars.keys()
    magnitudes = pruner.magnitudes()
    assert magnitudes["fc"].shape == (6 * 32,) and magnitudes["fc"].min() == 0.0


def test_sparsity_report_counts_a_dense_model(gru_model):
    report = sparsity_report(gru_model)
    assert report.total == sum(p.numel() for p in gru_model.parameters())
    assert report.nonzero == sum(int((p != 0).sum()) for p in gru_model.parameters())
    assert report.nonzero < report.total  # batch-norm biases start at exactly 0
    assert report.scalars()["params/pruned_groups_total"] == 0
    assert all(row.group is None for row in report.parameters)
