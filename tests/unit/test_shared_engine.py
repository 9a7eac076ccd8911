"""A grading worker's gradebooks share one engine: same answers, one schema check, nothing left open.

Run in a subprocess: ``install`` changes nbgrader for the whole process, as it does in a worker.
"""

import subprocess
import sys
import textwrap


def test_gradebooks_in_a_worker_share_one_engine_and_see_each_others_writes(tmp_path):
    code = textwrap.dedent(f"""
        import os, sqlite3, warnings
        warnings.filterwarnings("ignore")
        import nbgrader.api as api
        from nbgrader.api import Gradebook
        from gutcourse.grading._shared_engine import install, _engines

        url = "sqlite:///{tmp_path}/gradebook.db"
        with Gradebook(url) as gb:  # before install: nbgrader's own way makes the database
            gb.add_assignment("a1")
        checks = []  # nbgrader's own check of the tables, counted under install's
        create_all = api.Base.metadata.create_all
        api.Base.metadata.create_all = lambda *a, **k: (checks.append(1), create_all(*a, **k))[1]
        install()
        install()  # twice is once
        with Gradebook(url) as gb:
            gb.add_student("s1")
            first = gb.engine
        with Gradebook(url) as gb:
            assert gb.engine is first
            assert [s.id for s in gb.students] == ["s1"]
            assert [a.name for a in gb.assignments] == ["a1"]
        assert len(_engines) == 1
        # Another process writes; the next gradebook here reads it.
        with sqlite3.connect("{tmp_path}/gradebook.db") as conn:
            conn.execute("INSERT INTO student (id) VALUES ('s2')")
        with Gradebook(url) as gb:
            assert sorted(s.id for s in gb.students) == ["s1", "s2"]
        # A closed gradebook leaves no connection open.
        assert first.pool.checkedout() == 0
        # A forked child makes its own engine.
        pid = os.fork()
        if pid == 0:
            with Gradebook(url) as gb:
                os._exit(0 if gb.engine is not first and len(_engines) == 2 else 1)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        # A new database under another URL is made as nbgrader makes one.
        other = "sqlite:///{tmp_path}/other.db"
        with Gradebook(other) as gb:
            gb.add_student("t1")
        with Gradebook(other) as gb:
            assert [s.id for s in gb.students] == ["t1"]
        versions = sqlite3.connect("{tmp_path}/other.db").execute("SELECT * FROM alembic_version").fetchall()
        assert len(versions) == 1, versions
        print("OK", len(checks))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    # The tables were checked once per engine: for the first URL (already checked on its first
    # open) and for the second, never again after.
    assert done.stdout.split() == ["OK", "2"], done.stdout


def test_installed_for_a_block_gives_nbgrader_its_own_ways_back(tmp_path):
    """Verification shares engines only while it grades; after the block a deleted gradebook is made again."""
    code = textwrap.dedent(f"""
        import os, warnings
        warnings.filterwarnings("ignore")
        import nbgrader.api as api
        from nbgrader.api import Gradebook
        from gutcourse.grading._shared_engine import installed, _engines

        own = (api.create_engine, api.inspect, api.Base.metadata.create_all)
        url = "sqlite:///{tmp_path}/gradebook.db"
        with installed():
            with Gradebook(url) as gb:
                gb.add_student("s1")
                first = gb.engine
            with Gradebook(url) as gb:
                assert gb.engine is first and [s.id for s in gb.students] == ["s1"]
        assert (api.create_engine, api.inspect, api.Base.metadata.create_all) == own
        assert "create_all" not in vars(api.Base.metadata) and _engines == {{}}
        os.remove("{tmp_path}/gradebook.db")  # the same URL, a new database: its tables are made again
        with Gradebook(url) as gb:
            assert gb.engine is not first and gb.students == []
        print("OK")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["OK"], done.stdout
