"""On a shared server another user can plant files in the lease folder or an upload: none may turn against the campaign.

A real second user, created here (as root) and removed after, plants what an
attacker would; the campaign's files must keep every byte.
"""

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from campaign.dataset.cleaning import clean_upload
from campaign.gpus.leases import LeaseOptions, UnsafeLeaseFolderError, lease_devices

DECLARED = [{"index": 0, "memory_mb": 8192}]


@pytest.fixture
def other_user():
    """A second, unprivileged user of this machine, for the length of one test."""
    if os.geteuid() != 0 or not shutil.which("useradd"):
        reason = "creating a second user needs root and useradd"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI runs the tests as root")
        pytest.skip(reason)
    name = f"other{os.getpid()}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


@pytest.fixture
def shared_tmp():
    """A folder every user can write to, like /tmp (pytest's own are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="shared-server-", dir="/tmp"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder)


def as_user(user: str, *command: str) -> None:
    subprocess.run(["runuser", "-u", user, "--", *command], check=True, capture_output=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def victim_file(folder: Path, mode: int = 0o600) -> Path:
    victim = folder / "thesis.tex"
    victim.write_text("\\section{Results}\n")
    victim.chmod(mode)
    return victim


def lease(lock_dir: Path):
    options = LeaseOptions(lock_dir=lock_dir, declared=DECLARED, poll_seconds=0.01)
    with lease_devices(1, options, job="test"):
        pass


def shared_lease_folder(shared_tmp: Path) -> Path:
    """The folder as an administrator creates it: root's, mode 1777."""
    lock_dir = shared_tmp / "leases"
    lock_dir.mkdir()
    lock_dir.chmod(0o1777)
    return lock_dir


def test_a_planted_symbolic_link_is_refused_and_its_target_keeps_its_bytes(other_user, shared_tmp):
    lock_dir = shared_lease_folder(shared_tmp)
    victim = victim_file(shared_tmp)
    before = digest(victim)
    as_user(other_user, "ln", "-s", str(victim), str(lock_dir / "gpu0.lock"))
    with pytest.raises(UnsafeLeaseFolderError, match="gpu0.lock is a symbolic link"):
        lease(lock_dir)
    assert digest(victim) == before


def test_a_planted_hard_link_is_refused_and_its_target_keeps_its_bytes(other_user, shared_tmp):
    lock_dir = shared_lease_folder(shared_tmp)
    victim = victim_file(shared_tmp, mode=0o666)  # writable by all, so the kernel lets the other user link it
    before = digest(victim)
    as_user(other_user, "ln", str(victim), str(lock_dir / "gpu0.lock"))
    with pytest.raises(UnsafeLeaseFolderError, match="gpu0.lock is a file with 2 names"):
        lease(lock_dir)
    assert digest(victim) == before


def test_a_planted_fifo_is_refused_without_blocking(other_user, shared_tmp):
    lock_dir = shared_lease_folder(shared_tmp)
    as_user(other_user, "mkfifo", str(lock_dir / "gpu0.lock"))
    with pytest.raises(UnsafeLeaseFolderError, match="gpu0.lock is not a regular file"):
        lease(lock_dir)


def test_a_lease_folder_of_another_user_is_refused(other_user, shared_tmp):
    lock_dir = shared_tmp / "leases"
    as_user(other_user, "mkdir", "-m", "1777", str(lock_dir))
    with pytest.raises(UnsafeLeaseFolderError, match=f"belongs to {other_user}.*install -d -m 1777"):
        lease(lock_dir)
    assert not list(lock_dir.iterdir()), "nothing may be created in a folder another user controls"


def test_a_world_writable_lease_folder_without_the_sticky_bit_is_refused(shared_tmp):
    lock_dir = shared_tmp / "leases"
    lock_dir.mkdir()
    lock_dir.chmod(0o777)
    with pytest.raises(UnsafeLeaseFolderError, match="without the sticky bit.*chmod \\+t"):
        lease(lock_dir)


def test_a_lease_folder_that_is_a_link_is_refused(shared_tmp):
    elsewhere = shared_tmp / "elsewhere"
    elsewhere.mkdir()
    (shared_tmp / "leases").symlink_to(elsewhere)
    with pytest.raises(UnsafeLeaseFolderError, match="not a plain folder"):
        lease(shared_tmp / "leases")
    assert not list(elsewhere.iterdir())


def test_the_lease_folder_made_on_first_use_is_shared_and_leases_work(shared_tmp):
    lock_dir = shared_tmp / "new" / "leases"
    lease(lock_dir)
    assert lock_dir.stat().st_mode & 0o7777 == 0o1777
    lock = lock_dir / "gpu0.lock"
    assert lock.stat().st_nlink == 1 and lock.read_text() == ""  # released: the holder record is cleared


def write_image(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), (200, 30, 30)).save(path)


def test_an_upload_cannot_pull_in_files_from_outside_and_special_files_are_never_read(tmp_path):
    raw, outside = tmp_path / "raw", tmp_path / "outside"
    group = raw / "alpha"
    write_image(group / "a.jpg")
    (group / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    write_image(outside / "secret.jpg")
    (outside / "secret.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (group / "secret.jpg").symlink_to(outside / "secret.jpg")
    (group / "secret.txt").symlink_to(outside / "secret.txt")
    (group / "inside.jpg").symlink_to(group / "a.jpg")  # a link that stays in the upload is followed
    (group / "inside.txt").symlink_to(group / "a.txt")
    (group / "gone.jpg").symlink_to(group / "deleted.jpg")
    os.mkfifo(group / "pipe.jpg")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(group / "socket.txt"))
        (raw / "linked-group").symlink_to(outside)  # a whole group folder leading out
        result = clean_upload(raw, tmp_path / "out", classes=["ring"], class_maps={"alpha": {0: "ring"}})

    rows = {row["source"]: row for row in result.report}
    for source in ("alpha/secret.jpg", "alpha/secret.txt", "linked-group"):
        assert rows[source]["action"] == "rejected" and "outside the upload folder" in rows[source]["detail"], source
    assert rows["alpha/gone.jpg"]["action"] == "rejected" and "broken link" in rows["alpha/gone.jpg"]["detail"]
    assert rows["alpha/pipe.jpg"]["action"] == "skipped" and "FIFO" in rows["alpha/pipe.jpg"]["detail"]
    assert rows["alpha/socket.txt"]["action"] == "skipped" and "socket" in rows["alpha/socket.txt"]["detail"]
    kept = sorted(row["source"] for row in result.report if row["kind"] == "image" and row["action"] != "rejected")
    assert kept == ["alpha/a.jpg"]  # inside.jpg: followed, then dropped as the byte-identical duplicate it is
    assert rows["alpha/inside.jpg"]["detail"] == "duplicate of alpha/a.jpg, with the same labels"
    written = [path.name for path in (tmp_path / "out").rglob("*") if path.is_file()]
    assert not any("secret" in name for name in written)
