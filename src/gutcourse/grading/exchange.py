"""A stricter ``nbgrader collect`` for the filesystem exchange on a shared machine or hub.

nbgrader's exchange trusts what a student's own process writes, and a student's server
is that process.  On the course's hub a student could (docs/security.md, "The exchange"):

- put a folder named ``<another student>+<assignment>+...`` in ``inbound/`` and have it
  collected as the other student's work (nbgrader only logs "cheating attempt?");
- write any time into ``timestamp.txt`` and the folder's name, or submit on time and change
  the submitted files after the due date (they stay the student's, in a folder of mode 0777),
  and be graded as on time;
- put symbolic links in a submission, which ``collect`` follows as the grader account,
  copying the gradebook, the course's sources or anything else the grader can read into
  ``submitted/``, where the student's code then runs beside it;
- leave out ``submission_secret.txt``, which stops ``release_feedback`` for the whole class.

:class:`StrictCollect` collects the same submissions nbgrader would, except that:

- a folder not owned by the student it names is not collected (when ``check_owner`` is on);
- symbolic links, devices, pipes and sockets are not copied, nor files another account owns;
- a submission without ``submission_secret.txt`` is not collected;
- a submission's time is checked against the inode change times of its folder and files,
  which no user can set: when anything in it changed later than ``timestamp_tolerance``
  seconds after the time it claims, the latest change counts as its time (and is written
  to the collected ``timestamp.txt``), so lateness follows what the student really did.

The student can change their folder while it is being collected (it is theirs), so nothing
is trusted between looking and copying: every file and folder is opened without following
links, relative to its already-open parent, checked on the open descriptor and copied from
it, and the times are read after the copy.  A submission that breaks a limit (size, depth,
number of files) or cannot be read is refused on its own; the rest of the class is collected.
Each refusal is logged as an error naming the folder and the reason.  Use it with::

    c.ExchangeFactory.collect = "gutcourse.grading.exchange.StrictCollect"
"""

from __future__ import annotations

import datetime as dt
import errno
import fnmatch
import glob
import os
import re
import secrets
import shutil
import stat
from collections import defaultdict

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.utils import check_mode, parse_utc
from traitlets import Float, Integer

try:
    import pwd
except ImportError:  # pragma: no cover  (Windows: no owners to check)
    pwd = None

__all__ = ["StrictCollect", "inspect_submission", "SubmissionRefused"]

SECRET = "submission_secret.txt"
TIMESTAMP = "timestamp.txt"
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
_SECRET_TEXT = re.compile(r"[0-9a-fA-F]{16,256}")


class SubmissionRefused(Exception):
    """One submission is not collected; the message says why."""


def _owner(uid: int) -> str:
    if pwd is None:
        return str(uid)
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).replace(tzinfo=None)


def walk_submission(path: str, student: str | None, *, check_owner: bool = True, dest: str | None = None,
                    ignore=(), include=("*",), max_file_bytes: int = 100_000_000,
                    max_total_bytes: int = 100_000_000, max_entries: int = 10_000,
                    max_depth: int = 32) -> dict:
    """Look at (and with ``dest``, copy) one submission folder without following any link.

    Every entry is opened relative to its open parent with ``O_NOFOLLOW`` and judged by
    ``fstat`` on that descriptor, so a student who swaps a file or folder for a link while
    this runs gets the link refused, never followed.  Only regular files and folders owned
    by the student are taken; ``timestamp.txt`` and the secret are read, never copied.
    Raises :class:`SubmissionRefused`; returns ``{"skipped": [(relative path, why)],
    "changed": naive UTC time of the latest inode change, "claimed": the text of
    timestamp.txt or None, "secret": str}``.
    """
    try:
        top = os.open(path, _OPEN | os.O_DIRECTORY)
    except OSError as err:
        raise SubmissionRefused("not a folder" if err.errno in (errno.ELOOP, errno.ENOTDIR)
                                else f"cannot be opened ({err.strerror})") from None
    info = os.fstat(top)
    owner_uid = info.st_uid
    if check_owner and student is not None and _owner(owner_uid) != student:
        os.close(top)
        raise SubmissionRefused(f"it names {student} but belongs to {_owner(owner_uid)}")
    report = {"skipped": [], "changed": _utc(info.st_ctime), "claimed": None, "secret": None}
    latest = info.st_ctime
    total = entries = 0
    stack = [(top, "", dest, 0)]
    try:
        while stack:
            dfd, rel, out, depth = stack.pop()
            try:
                names = sorted(os.listdir(dfd))
                for name in names:
                    entries += 1
                    if entries > max_entries:
                        raise SubmissionRefused(f"more than {max_entries} files and folders")
                    relname = os.path.join(rel, name)
                    special = depth == 0 and name in (TIMESTAMP, SECRET)
                    if not special and (any(fnmatch.fnmatch(name, p) for p in ignore)):
                        continue
                    try:
                        fd = os.open(name, _OPEN, dir_fd=dfd)
                    except OSError as err:
                        why = "a symbolic link" if err.errno == errno.ELOOP else f"cannot be opened ({err.strerror})"
                        report["skipped"].append((relname, why))
                        continue
                    try:
                        st = os.fstat(fd)
                        if check_owner and st.st_uid != owner_uid:
                            report["skipped"].append((relname, f"owned by {_owner(st.st_uid)}, not by the student"))
                            continue
                        if stat.S_ISDIR(st.st_mode):
                            if special:
                                raise SubmissionRefused(f"its {name} is a folder")
                            if depth + 1 > max_depth:
                                raise SubmissionRefused(f"folders nested more than {max_depth} deep")
                            sub_out = None
                            if out is not None:
                                sub_out = os.path.join(out, name)
                                os.mkdir(sub_out, 0o755)
                            stack.append((fd, relname, sub_out, depth + 1))
                            fd = None  # closed when its own listing is done
                            continue
                        if not stat.S_ISREG(st.st_mode):
                            if special:
                                raise SubmissionRefused(f"its {name} is not a file")
                            report["skipped"].append((relname, "not a regular file"))
                            continue
                        if special:
                            text = os.read(fd, 1024).decode("ascii", "replace").strip()
                            report["claimed" if name == TIMESTAMP else "secret"] = text
                            latest = max(latest, os.fstat(fd).st_ctime)
                            continue
                        if not any(fnmatch.fnmatch(name, p) for p in include):
                            continue
                        if st.st_size > max_file_bytes:
                            report["skipped"].append((relname, f"larger than {max_file_bytes} bytes"))
                            continue
                        # Looking only: the size on record will do; copying counts what it reads.
                        total += (_copy_from(fd, os.path.join(out, name), max_file_bytes) if out is not None
                                  else st.st_size)
                        if total > max_total_bytes:
                            raise SubmissionRefused(f"more than {max_total_bytes} bytes")
                        latest = max(latest, os.fstat(fd).st_ctime)  # after the copy: edits show
                    finally:
                        if fd is not None:
                            os.close(fd)
                latest = max(latest, os.fstat(dfd).st_ctime)
            finally:
                os.close(dfd)
    except BaseException:
        for leftover, *_ in stack:
            try:
                os.close(leftover)
            except OSError:
                pass
        raise
    report["changed"] = _utc(latest)
    secret = report["secret"]
    if secret is None:
        raise SubmissionRefused(f"it has no {SECRET} (nbgrader's submit always writes one)")
    if not _SECRET_TEXT.fullmatch(secret):
        raise SubmissionRefused(f"its {SECRET} is not what nbgrader's submit writes")
    return report


def _copy_from(fd: int, dest: str, limit: int) -> int:
    """Copy an open regular file to ``dest``; at most ``limit`` bytes are read."""
    done = 0
    out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return done
            done += len(chunk)
            if done > limit:
                raise SubmissionRefused(f"a file grew past {limit} bytes while it was collected")
            os.write(out, chunk)
    finally:
        os.close(out)


def inspect_submission(path: str, student: str | None, claimed: dt.datetime | None, *,
                       check_owner: bool = True, tolerance: float = 300.0, **limits) -> dict:
    """What :class:`StrictCollect` thinks of one submission folder in ``inbound/``, without copying it.

    Returns ``{"refused": reason or None, "skipped": [(relative path, why)], "time": datetime,
    "changed_late": bool}``; ``time`` is naive UTC, like nbgrader's.
    """
    try:
        walked = walk_submission(path, student, check_owner=check_owner, **limits)
    except SubmissionRefused as err:
        return {"refused": str(err), "skipped": [], "time": claimed, "changed_late": False}
    except OSError as err:  # the folder changed under us: refuse it, keep collecting the others
        return {"refused": f"it changed while it was read ({err.strerror})", "skipped": [], "time": claimed,
                "changed_late": False}
    time, late = _settle_time(claimed, walked["changed"], tolerance)
    return {"refused": None, "skipped": walked["skipped"], "time": time, "changed_late": late}


def _settle_time(claimed: dt.datetime | None, changed: dt.datetime, tolerance: float):
    """The submission's time: what it claims, unless its files last changed more than ``tolerance`` away."""
    if claimed is None or abs((changed - claimed).total_seconds()) > tolerance:
        return changed, claimed is not None and changed > claimed
    return claimed, False


class StrictCollect(ExchangeCollect):
    """nbgrader's collect, without trusting what students wrote into the exchange (module docstring)."""

    timestamp_tolerance = Float(
        300.0,
        help="Seconds a submission's files may have changed after (or before) the time it claims "
             "before the time of the latest change counts instead.",
    ).tag(config=True)
    max_entries = Integer(10_000, help="Most files and folders one submission may hold.").tag(config=True)
    max_depth = Integer(32, help="Deepest nesting of folders in one submission.").tag(config=True)

    def _limits(self) -> dict:
        return {"ignore": list(self.coursedir.ignore), "include": list(self.coursedir.include),
                "max_file_bytes": 1000 * self.coursedir.max_file_size,
                "max_total_bytes": 1000 * self.coursedir.max_dir_size,
                "max_entries": self.max_entries, "max_depth": self.max_depth}

    def _check_owner(self) -> bool:
        return bool(self.check_owner) and pwd is not None

    def init_src(self):
        if self.coursedir.course_id == '':
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, 'inbound')
        if not os.path.isdir(self.inbound_path):
            self.fail("Course not found: {}".format(self.inbound_path))
        if not check_mode(self.inbound_path, read=True, execute=True):
            self.fail("You don't have read permissions for the directory: {}".format(self.inbound_path))
        student_id = self.coursedir.student_id if self.coursedir.student_id else '*'
        pattern = os.path.join(self.inbound_path, '{}+{}+*'.format(glob.escape(student_id) if student_id != '*'
                                                                  else '*', self.coursedir.assignment_id))
        by_student = defaultdict(list)
        for folder in glob.glob(pattern):
            try:
                record = self._path_to_record(folder)
                report = inspect_submission(folder, record['username'], record['timestamp'],
                                            check_owner=self._check_owner(),
                                            tolerance=self.timestamp_tolerance, **self._limits())
            except Exception as err:  # one folder, never the whole collect
                self.log.error("not collected: %s: %s", folder, err)
                continue
            if report["refused"]:
                self.log.error("not collected: %s: %s", folder, report["refused"])
                continue
            if report["changed_late"]:
                self.log.error("%s: changed at %s UTC, after the time it claims (%s UTC); "
                               "that change counts as its time", folder, report["time"], record['timestamp'])
            record['timestamp'] = report["time"]
            by_student[record['username']].append(record)

        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            try:
                self.duedate = gb.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                self.duedate = None
        self.src_records = []
        for records in by_student.values():
            records = self._sort_by_timestamp(records)
            if self.duedate is not None and self.before_duedate:
                on_time = [r for r in records if r['timestamp'] <= self.duedate]
                records = on_time or records
            self.src_records.append(records[0])

    def copy_files(self):
        if not self.src_records:
            self.log.warning("No submissions of '%s' for course '%s' to collect",
                             self.coursedir.assignment_id, self.coursedir.course_id)
        for rec in self.src_records:
            src = os.path.join(self.inbound_path, rec['filename'])
            try:
                self._collect_one(rec, src)
            except SubmissionRefused as err:
                self.log.error("not collected: %s: %s", src, err)
            except Exception as err:  # noqa: BLE001  (one submission, never the whole class)
                self.log.error("not collected: %s: %s: %s", src, type(err).__name__, err)

    def _collect_one(self, rec, src):
        student = rec['username']
        dest = self.coursedir.format_path(self.coursedir.submitted_directory, student, self.coursedir.assignment_id)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.lexists(dest):
            existing = self.coursedir.get_existing_timestamp(dest) if os.path.isdir(dest) else None
            newer = existing is None or rec['timestamp'] > existing
            if not ((self.update and newer) or (self.before_duedate and existing != rec['timestamp'])):
                self.log.info("No newer submission to collect: %s %s", student, self.coursedir.assignment_id)
                return
        staging = f"{dest}.collecting-{secrets.token_hex(4)}"
        os.mkdir(staging, 0o755)
        try:
            walked = walk_submission(src, student, check_owner=self._check_owner(), dest=staging,
                                     **self._limits())
            for rel, why in walked["skipped"]:
                self.log.error("not collected from %s: %s: %s", src, rel, why)
            claimed = rec['timestamp']
            time, late = _settle_time(claimed, walked["changed"], self.timestamp_tolerance)
            if late and time != claimed:
                self.log.error("%s: changed at %s UTC while or before it was collected, after the time it "
                               "claims (%s UTC); that change counts as its time", src, time, claimed)
            text = walked["claimed"] or ""
            try:
                keep = text and parse_utc(text) == time
            except (ValueError, OverflowError):
                keep = False
            with open(os.path.join(staging, TIMESTAMP), "w", encoding="utf-8") as fh:
                fh.write(text if keep else time.replace(tzinfo=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
            with open(os.path.join(staging, SECRET), "w", encoding="ascii") as fh:
                fh.write(walked["secret"])
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if os.path.lexists(dest):
            self.log.info("Updating submission: %s %s", student, self.coursedir.assignment_id)
            if os.path.isdir(dest) and not os.path.islink(dest):
                shutil.rmtree(dest)
            else:
                os.unlink(dest)
        else:
            self.log.info("Collecting submission: %s %s", student, self.coursedir.assignment_id)
        os.rename(staging, dest)
