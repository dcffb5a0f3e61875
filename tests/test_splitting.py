import hashlib

from campaign.splitting import assign_splits, hashed_split, near_duplicate_clusters, split_lists


def row(name, group_split="", ahash=None):
    digest = hashlib.sha256(name.encode()).hexdigest()
    return {
        "image": f"images/{name}.jpg",
        "group_split": group_split,
        "image_sha256": digest,
        # Distinct images get far-apart hashes unless one is given.
        "ahash": ahash or (digest * 2)[:64],
    }


def test_adding_images_never_moves_existing_ones():
    before = [row(f"img{i}") for i in range(200)]
    after = before + [row(f"new{i}") for i in range(300)]
    first, _ = assign_splits(before, seed=0, val=0.2, test=0.1)
    second, _ = assign_splits(after, seed=0, val=0.2, test=0.1)
    assert all(second[image] == split for image, split in first.items())


def test_fractions_are_reached_and_the_seed_matters():
    rows = [row(f"img{i}") for i in range(2000)]
    splits, _ = assign_splits(rows, seed=0, val=0.2, test=0.1)
    counts = {name: list(splits.values()).count(name) for name in ("train", "val", "test")}
    assert 340 < counts["val"] < 460 and 150 < counts["test"] < 250
    other, _ = assign_splits(rows, seed=1, val=0.2, test=0.1)
    assert other != splits


def test_group_splits_are_honoured():
    rows = [row(f"img{i}", group_split="test") for i in range(50)]
    splits, _ = assign_splits(rows, seed=0, val=0.2, test=0.1)
    assert set(splits.values()) == {"test"}


def test_near_duplicates_share_a_split_and_crossings_are_reported():
    base = "f" * 64
    close = "e" + "f" * 63  # one bit apart
    rows = [row("a", ahash=base), row("b", ahash=close)] + [row(f"x{i}") for i in range(50)]
    splits, leaks = assign_splits(rows, seed=0, val=0.3, test=0.3)
    assert splits["images/a.jpg"] == splits["images/b.jpg"]
    assert leaks == []
    forced = [row("a", "train", base), row("b", "val", close)]
    _, leaks = assign_splits(forced, seed=0, val=0.3, test=0.3)
    assert leaks and leaks[0]["hash_distance"] == 1


def test_clusters_are_transitive():
    assert near_duplicate_clusters(["0" * 64, "0" * 63 + "f", "0" * 62 + "ff"], max_bits=4) == [0, 0, 0]


def test_hashed_split_and_lists_are_deterministic():
    assert hashed_split("key", 3, 0.2, 0.2) == hashed_split("key", 3, 0.2, 0.2)
    lists = split_lists({"images/b.jpg": "train", "images/a.jpg": "train", "images/c.jpg": "val"})
    assert lists == {"train": "./images/a.jpg\n./images/b.jpg\n", "val": "./images/c.jpg\n", "test": ""}
