"""bench_nanogpt's arithmetic (scripts/bench/nanogpt_peer.py): which characters each sliding
window scores, the peer's command and log. (The benchmark itself needs ../shared and
minutes: never run here.)"""

from __future__ import annotations

import pytest

from scripts.bench.nanogpt_peer import iter_times, peer_cmd, score_windows


def scored_targets(n: int, block: int, stride: int) -> list[tuple[int, int]]:
    """(target, tokens of context) for each scored prediction, in order."""
    out = []
    for begin, first in score_windows(n, block, stride):
        assert begin >= 0 and begin + block <= n - 1  # a full window, its targets inside the text
        out += [(begin + 1 + j, j + 1) for j in range(first, block)]
    return out


@pytest.mark.parametrize(
    ("n", "block", "stride"),
    [
        (111_540, 64, 32),
        (111_540, 256, 128),
        (65, 64, 32),
        (66, 64, 32),
        (97, 64, 32),
        (98, 64, 32),
        (1000, 8, 8),
    ],
)
def test_every_token_but_the_first_is_scored_once_with_enough_context(
    n: int, block: int, stride: int
) -> None:
    targets = scored_targets(n, block, stride)
    assert [t for t, _ in targets] == list(range(1, n))  # each of 1..n-1 once, in order
    later = [context for t, context in targets if t > block]  # beyond the first window
    assert min(later, default=block) >= block - stride + 1


def test_the_windows_step_by_the_stride_and_the_last_is_flush_with_the_end() -> None:
    # 10 tokens, block 4, stride 2: starts 0, 2, 4 and the last one, 5 (targets 6..9)
    assert score_windows(10, 4, 2) == [(0, 0), (2, 2), (4, 2), (5, 3)]
    assert score_windows(5, 4, 2) == [(0, 0)]  # one window holds the whole text


@pytest.mark.parametrize(("n", "block", "stride"), [(64, 64, 32), (100, 64, 0), (100, 64, 65)])
def test_impossible_windows_are_refused(n: int, block: int, stride: int) -> None:
    with pytest.raises(ValueError, match="need 0 < stride <= block < n"):
        score_windows(n, block, stride)


def test_the_peers_logged_iteration_times_are_read_in_seconds() -> None:
    log = (
        "step 0: train loss 4.2, val loss 4.2\n"
        "iter 0: loss 4.2, time 1126.41ms, mfu -100.00%\n"
        "saving checkpoint to out\n"
        "iter 1: loss 4.1, time 72.50ms, mfu 0.02%\n"
    )
    assert iter_times(log) == pytest.approx([1.12641, 0.0725])


def test_the_peer_saves_its_final_model_and_evaluates_only_at_the_ends() -> None:
    cmd = peer_cmd({"max_iters": "300", "block_size": "64"}, max_iters="500")
    assert cmd[1:3] == ["train.py", "config/train_shakespeare_char.py"]
    assert set(cmd[3:]) == {
        "--max_iters=500", "--block_size=64", "--eval_interval=500", "--always_save_checkpoint=True",
    }  # fmt: skip
