"""Builder machinery: sharding, determinism, shard-and-concatenate, kill-and-resume, card, CLI."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmreason import schema
from mmreason.data_builders import BUILDERS, common, get_builder, image_scenes, main
from mmreason.data_builders.sharding import chunk_ranges, parse_shard, sample_id, sample_rng, shard_chunks

FAST = {"qtypes": ["color", "shape", "count", "relation", "text"]}  # small scenes: quick to draw


def _rows(out):
    return sorted(schema.load_rows(out), key=lambda r: r["id"])


def _media_bytes(out, rows):
    return {p: (Path(out) / p).read_bytes() for r in rows for _, p in schema.media_parts(r)}


def test_shard_and_chunk_arithmetic():
    assert parse_shard("3/8") == (3, 8) and parse_shard((0, 1)) == (0, 1)
    for bad in ("8/8", "1", "-1/2", "a/b", (2, 1)):
        with pytest.raises(ValueError):
            parse_shard(bad)
    n, cs = 103, 10
    parts = [shard_chunks(n, cs, (i, 4)) for i in range(4)]
    merged = sorted(r for p in parts for r in p)
    assert merged == chunk_ranges(n, cs)  # disjoint and complete
    assert sum(e - s for s, e in merged) == n
    assert sample_id("x", 7) < sample_id("x", 10)  # string order is sample order
    draw = [sample_rng(1, j).integers(1 << 30) for j in (5, 5, 6)]
    assert draw[0] == draw[1] != draw[2]


def test_shards_concatenate_into_the_single_run(tmp_path):
    single = image_scenes.build(tmp_path / "single", n=8, seed=5, chunk_size=2, progress=False, **FAST)
    want = _rows(single)
    assert [r["id"] for r in want] == [sample_id("image_scenes", j) for j in range(8)]
    got, media = [], {}
    for i in range(3):  # three "machines", three folders
        out = image_scenes.build(tmp_path / f"shard{i}", n=8, seed=5, shard=(i, 3), chunk_size=2, progress=False,
                                 **FAST)
        rows = _rows(out)
        man = json.loads((out / "manifest.json").read_text())
        assert not man["complete"] and man["rows"] == len(rows)
        got += rows
        media.update(_media_bytes(out, rows))
    assert sorted(got, key=lambda r: r["id"]) == want
    assert media == _media_bytes(single, want)  # pixel-identical media
    # k shards into one folder produce the single run's files, and the last one completes the card
    shared = tmp_path / "shared"
    for i in (2, 0, 1):
        image_scenes.build(shared, n=8, seed=5, shard=f"{i}/3", chunk_size=2, progress=False, **FAST)
    assert sorted(p.name for p in shared.glob("*.parquet")) == sorted(p.name for p in single.glob("*.parquet"))
    assert _rows(shared) == want
    assert json.loads((shared / "manifest.json").read_text())["complete"]
    assert "Status: **complete**" in (shared / "README.md").read_text()


_KILL_ARGS = ["image_scenes", "--n", "30", "--seed", "2", "--chunk-size", "3", "--no-progress",
              "--set", 'qtypes=["small_color", "small_relative"]', "--set", "highres_side=[700, 900]"]


def test_kill_and_resume_equals_an_uninterrupted_build(tmp_path):
    out = tmp_path / "killed"
    code = f"from mmreason.data_builders import main; main({[*_KILL_ARGS, '--out', str(out)]!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    chunks = out / "chunks"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if chunks.exists() and len(list(chunks.glob("*.json"))) >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(chunks.glob("*.json")))
    assert 2 <= done < 10, "the kill should land mid-build"
    assert not (out / "manifest.json").exists()
    # a crash between a chunk's Parquet file and its manifest: that chunk must be rebuilt, not trusted
    first = sorted(chunks.glob("*.json"))[0]
    first.unlink()
    assert main([*_KILL_ARGS, "--out", str(out)]) == 0
    ref = tmp_path / "ref"
    assert main([*_KILL_ARGS, "--out", str(ref)]) == 0
    got, want = _rows(out), _rows(ref)
    assert [r["id"] for r in got] == [sample_id("image_scenes", j) for j in range(30)]  # no holes, no duplicates
    assert got == want
    assert _media_bytes(out, got) == _media_bytes(ref, want)
    assert json.loads((out / "manifest.json").read_text())["complete"]


def test_resume_with_other_settings_is_refused(tmp_path):
    image_scenes.build(tmp_path, n=2, seed=0, chunk_size=2, progress=False, **FAST)
    with pytest.raises(ValueError, match=r"build\.json.*seed"):
        image_scenes.build(tmp_path, n=2, seed=1, chunk_size=2, progress=False, **FAST)
    assert main(["image_scenes", "--out", str(tmp_path), "--n", "2", "--seed", "1", "--chunk-size", "2",
                 "--no-progress"]) == 2


@pytest.mark.slow  # two spawned interpreters importing datasets: ~10 s
def test_workers_build_the_same_dataset(tmp_path):
    a = image_scenes.build(tmp_path / "a", n=8, seed=9, chunk_size=2, progress=False, **FAST)
    b = image_scenes.build(tmp_path / "b", n=8, seed=9, chunk_size=2, workers=2, progress=False, **FAST)
    assert _rows(a) == _rows(b)


def skip_odd(ctx: common.SampleContext):
    """A real (tiny) builder for the card test: text-only rows, every odd sample rejected."""
    if ctx.index % 2:
        ctx.count("rejected")
        return None
    ctx.count("kept")
    return {"id": ctx.id, "task": "vqa", "source": "toy", "answer": str(int(ctx.rng.integers(3))),
            "messages": [{"role": "user", "content": [{"type": "text", "text": f"sample {ctx.index}"}]}],
            "meta": {"qtype": "toy"}}


def test_skipped_samples_and_counters_reach_the_card(tmp_path):
    out = common.build_dataset(tmp_path, name="toy", make_sample=skip_odd, n=9, chunk_size=4, progress=False)
    rows = _rows(out)
    assert [r["id"] for r in rows] == [sample_id("toy", j) for j in range(0, 9, 2)]
    man = json.loads((out / "manifest.json").read_text())
    assert man["rows"] == 5 and man["skipped"] == 4 and man["complete"]
    card = (out / "README.md").read_text()
    assert "| kept | 5 |" in card and "| rejected | 4 |" in card and "Rows: **5**" in card


def test_loads_with_plain_datasets_and_lists_in_cli(tmp_path, capsys):
    import datasets

    out = image_scenes.build(tmp_path / "d", n=5, chunk_size=2, progress=False, **FAST)
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert sorted(ds["id"]) == [r["id"] for r in _rows(out)]
    assert schema.decode_row(ds[0])["meta"]["qtype"] in FAST["qtypes"]
    assert set(BUILDERS) >= {"image_scenes", "video_clips", "audio_speech"}
    assert all(callable(get_builder(name)) for name in BUILDERS)
    with pytest.raises(KeyError, match="image_scenes"):
        get_builder("image_scene")
    from mmreason.cli import main as cli_main

    assert cli_main(["ls", "builders"]) == 0
    assert "image_scenes" in capsys.readouterr().out


def test_a_rebuilt_chunk_clears_its_half_written_files(tmp_path):
    image_scenes.build(tmp_path, n=4, chunk_size=2, progress=False, **FAST)
    want = _rows(tmp_path)
    (tmp_path / "chunks" / "part-000000002-000000004.json").unlink()  # killed before its manifest
    junk = [tmp_path / "part-000000002-000000004.parquet.tmp",
            tmp_path / "media/000000/.image_scenes-000000003-image.tmp9.png"]
    other = tmp_path / "media/000000/.image_scenes-000000001-image.tmp9.png"  # a finished chunk's: not ours
    for p in [*junk, other]:
        p.write_bytes(b"partial")
    image_scenes.build(tmp_path, n=4, chunk_size=2, progress=False, **FAST)
    assert not any(p.exists() for p in junk) and other.exists()
    assert _rows(tmp_path) == want


def _cli_build(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "mmreason", "build", "image_scenes", "--no-progress",
                             "--set", json.dumps(FAST["qtypes"]).join(["qtypes=", ""]), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_a_shard_is_a_share_of_the_samples_whatever_n_is(tmp_path):
    # with 64-sample chunks, --n 32 --shard 0/4 wrote all 32 rows and 1/4 wrote none, exiting 0
    out = tmp_path / "shared"
    for i in (0, 1):
        proc = _cli_build("--out", str(out), "--n", "32", "--shard", f"{i}/4")
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
        assert len(_rows(out)) == 8 * (i + 1)
    for i in (2, 3):
        image_scenes.build(out, n=32, shard=(i, 4), progress=False, **FAST)
    single = image_scenes.build(tmp_path / "single", n=32, progress=False, **FAST)
    assert _rows(out) == _rows(single)
    assert json.loads((out / "manifest.json").read_text())["complete"]
    proc = _cli_build("--out", str(tmp_path / "few"), "--n", "3", "--shard", "3/4")
    assert proc.wait(timeout=300) == 2 and "shard 3/4 of 3 samples holds none" in proc.stderr.read()


def _children(pid):
    """Pids of the worker processes `pid` spawned (multiprocessing's spawn_main), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmd:
            found.append(int(entry.name))
    return found


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_build(tmp_path):
    # SIGKILL of `mmreason build --workers 2` left both workers writing chunks 26 minutes later
    out = tmp_path / "d"
    proc = _cli_build("--out", str(out), "--n", "2000", "--chunk-size", "2", "--workers", "2")
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not list((out / "chunks").glob("*.json")):
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()
    workers = _children(proc.pid)
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.05)
    survivors = [w for w in workers if _alive(w)]
    for w in survivors:  # leave nothing running whatever the outcome
        os.kill(w, signal.SIGKILL)
    assert not survivors, "workers outlived their killed parent"
    written = len(list((out / "chunks").glob("*.json")))
    time.sleep(2)
    assert len(list((out / "chunks").glob("*.json"))) == written  # nobody writes on
