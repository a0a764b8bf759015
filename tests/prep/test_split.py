import itertools
from collections import Counter

import pytest

from handspot.errors import UserError
from prep.egohands import video_attributes
from prep.split import choose_videos, split_by_frame, split_by_video, split_counts

# The 48 EgoHands videos: 4 activities x 3 locations x 4 viewer pairs.
ACTIVITIES = ("CARDS", "CHESS", "JENGA", "PUZZLE")
LOCATIONS = ("COURTYARD", "OFFICE", "LIVINGROOM")
PAIRS = (("B", "S"), ("S", "B"), ("H", "T"), ("T", "H"))
VIDEOS = {
    f"{a}_{loc}_{v}_{p}": video_attributes(f"{a}_{loc}_{v}_{p}")
    for a, loc, (v, p) in itertools.product(ACTIVITIES, LOCATIONS, PAIRS)
}


def test_egohands_split_sizes_and_coverage():
    assignment, warnings = split_by_video(VIDEOS, (0.8, 0.1, 0.1), seed=0)
    assert len(VIDEOS) == 48 and not warnings
    assert Counter(assignment.values()) == {"train": 38, "eval": 5, "test": 5}
    train = [v for v, s in assignment.items() if s == "train"]
    assert {VIDEOS[v]["activity"] for v in train} == set(ACTIVITIES)
    assert {VIDEOS[v]["location"] for v in train} == set(LOCATIONS)
    # Held-out videos are spread over strata, not drawn from one activity.
    for split in ("eval", "test"):
        held = [v for v, s in assignment.items() if s == split]
        assert len({(VIDEOS[v]["activity"], VIDEOS[v]["location"]) for v in held}) == 5


def test_split_is_seeded():
    a, _ = split_by_video(VIDEOS, (0.8, 0.1, 0.1), seed=3)
    b, _ = split_by_video(dict(reversed(list(VIDEOS.items()))), (0.8, 0.1, 0.1), seed=3)
    c, _ = split_by_video(VIDEOS, (0.8, 0.1, 0.1), seed=4)
    assert a == b
    assert a != c


@pytest.mark.parametrize("seed", range(20))
def test_coverage_holds_for_any_seed(seed):
    assignment, _ = split_by_video(VIDEOS, (0.8, 0.1, 0.1), seed=seed)
    train = [v for v, s in assignment.items() if s == "train"]
    assert {VIDEOS[v]["activity"] for v in train} == set(ACTIVITIES)
    assert {VIDEOS[v]["location"] for v in train} == set(LOCATIONS)


def test_too_few_videos_warns_and_still_splits():
    few = {k: VIDEOS[k] for k in list(VIDEOS)[:3]}
    assignment, _ = split_by_video(few, (0.8, 0.1, 0.1), seed=0)
    assert sorted(assignment.values()) == ["eval", "test", "train"]


def test_counts_and_errors():
    assert split_counts(48, (0.8, 0.1, 0.1)) == (38, 5, 5)
    assert split_counts(4, (0.8, 0.1, 0.1)) == (2, 1, 1)
    assert split_counts(2, (0.8, 0.1, 0.1)) == (2, 0, 0)
    with pytest.raises(UserError, match="cannot be split"):
        split_counts(2, (0.1, 0.45, 0.45))
    with pytest.raises(UserError):
        split_counts(10, (0.8, -0.1, 0.3))


def test_split_by_frame_is_seeded_and_complete():
    keys = [f"f{i:03d}" for i in range(100)]
    a = split_by_frame(keys, (0.8, 0.1, 0.1), 1)
    assert a == split_by_frame(list(reversed(keys)), (0.8, 0.1, 0.1), 1)
    assert Counter(a.values()) == {"train": 80, "eval": 10, "test": 10}


def test_named_held_out_videos():
    names = sorted(VIDEOS)[:4]
    got = choose_videos(names, [names[1]], [names[3]])
    assert got == {names[0]: "train", names[1]: "eval", names[2]: "train", names[3]: "test"}
    with pytest.raises(UserError, match=f"no video named NOPE; the videos are: {names[0]}"):
        choose_videos(names, ["NOPE"], [])
    with pytest.raises(UserError, match="both eval and test"):
        choose_videos(names, [names[0]], [names[0]])
    with pytest.raises(UserError, match="leave at least one"):
        choose_videos(names, names[:2], names[2:])
