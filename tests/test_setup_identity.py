"""swarm.pem backup/restore/mismatch, the same-identity lock, login-file backup rules."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

from gswarm.errors import LoginError
from gswarm.rlswarm import identity
from gswarm.rlswarm.identity import IdentityError, IdentityLock, guard_identity


@pytest.fixture
def co(tmp_path):
    (tmp_path / "co/modal-login/temp-data").mkdir(parents=True)
    return tmp_path / "co"


def test_pem_backed_up_first_time_then_kept(co, state_dir):
    (co / "swarm.pem").write_bytes(b"KEY-1")
    st = guard_identity(co, state_dir)
    assert st.action == "backed_up" and st.backup.read_bytes() == b"KEY-1"
    assert stat.S_IMODE(st.backup.stat().st_mode) == 0o600
    assert guard_identity(co, state_dir).action == "kept"


def test_missing_pem_with_backup_is_restored_not_regenerated(co, state_dir):
    (co / "swarm.pem").write_bytes(b"KEY-1")
    guard_identity(co, state_dir)
    (co / "swarm.pem").unlink()
    st = guard_identity(co, state_dir)
    assert st.action == "restored" and (co / "swarm.pem").read_bytes() == b"KEY-1"
    assert stat.S_IMODE((co / "swarm.pem").stat().st_mode) == 0o600


def test_different_pem_stops_with_clear_message_and_changes_nothing(co, state_dir):
    (co / "swarm.pem").write_bytes(b"KEY-1")
    backup = guard_identity(co, state_dir).backup
    (co / "swarm.pem").write_bytes(b"KEY-2")
    with pytest.raises(IdentityError) as ei:
        guard_identity(co, state_dir)
    assert "different identity" in str(ei.value) and str(backup) in str(ei.value) and ei.value.exit_code == 4
    assert (co / "swarm.pem").read_bytes() == b"KEY-2" and backup.read_bytes() == b"KEY-1"


def test_no_pem_no_backup_is_absent(co, state_dir):
    assert guard_identity(co, state_dir).action == "absent"


def test_second_node_with_same_identity_is_refused(co, tmp_path):
    (co / "swarm.pem").write_bytes(b"KEY-1")
    first = IdentityLock(co / "swarm.pem", "alpha", tmp_path / "locks0")
    (tmp_path / "locks0").mkdir()
    first.acquire()
    second = IdentityLock(co / "swarm.pem", "beta", tmp_path / "locks0")
    with pytest.raises(IdentityError, match=r'already used by another node.*"node": "alpha"'):
        second.acquire()
    first.release()
    second.acquire()  # free again once the first node stopped
    second.release()


def test_lock_held_by_another_process(co, tmp_path):
    (co / "swarm.pem").write_bytes(b"KEY-9")
    locks = tmp_path / "locks"
    locks.mkdir()
    path = IdentityLock(co / "swarm.pem", "x", locks).path
    child = subprocess.Popen([sys.executable, "-c", (
        "import fcntl,os,sys;fd=os.open(sys.argv[1],os.O_RDWR|os.O_CREAT);fcntl.flock(fd,fcntl.LOCK_EX);"
        "os.write(fd,b'other gswarm');print('held',flush=True);sys.stdin.read()"), str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(IdentityError, match="other gswarm"):
            IdentityLock(co / "swarm.pem", "x", locks).acquire()
    finally:
        child.stdin.close()
        child.wait(10)
    IdentityLock(co / "swarm.pem", "x", locks).acquire()  # the kernel dropped the dead holder's lock


def _login_files(co, activated=True):
    td = co / "modal-login/temp-data"
    (td / "userData.json").write_text(json.dumps({"org-1": {"orgId": "org-1", "address": "0x1", "userId": "u"}}, indent=2))
    (td / "userApiKey.json").write_text(json.dumps({"org-1": [{"publicKey": "0xp", "privateKey": "0xSECRET",
                                                             "createdAt": "2025", "activated": activated}]}))


def test_inactive_login_is_not_backed_up(co, state_dir):
    _login_files(co, activated=False)
    with pytest.raises(LoginError, match="no activated key for ORG_ID org-1") as ei:
        identity.backup_login_files(co, state_dir)
    assert "SECRET" not in str(ei.value)
    assert not (identity.backup_dir(state_dir, co) / "userApiKey.json").exists()


def test_restore_only_fills_missing_files(co, state_dir):
    _login_files(co)
    identity.backup_login_files(co, state_dir)
    td = co / "modal-login/temp-data"
    (td / "userApiKey.json").unlink()
    (td / "userData.json").write_text('{"org-new": {}}')
    assert identity.restore_login_files(co, state_dir) == ["userApiKey.json"]
    assert json.loads((td / "userData.json").read_text()) == {"org-new": {}}
    assert identity.backed_up_org_id(co, state_dir) == "org-1"


def test_org_id_is_first_key(tmp_path):
    p = tmp_path / "userData.json"
    p.write_text('{"b-org": {"orgId": "b-org"}, "a-org": {}}')
    assert identity.read_org_id(p) == "b-org"
