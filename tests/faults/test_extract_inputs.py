"""``realtime.extract`` on bad inputs: a malformed transcript row is skipped and counted (with its
file and line), and symbolic links inside --input, to files or folders, are skipped, not followed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers.paths import ROOT

from realtime.extract import LINK_SKIPPED, plan

MELD_HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
MELD_ROWS = [  # rows of MELD's dev_sent_emo.csv
    '1,"Oh my God, he’s lost it. He’s totally lost it.",Phoebe,sadness,negative,0,0,4,7,"00:20:57,256","00:21:00,049"\n',
    '2,What?,Monica,surprise,negative,0,1,4,7,"00:21:01,927","00:21:03,261"\n',
    '3,"Or! Or, we could go to the bank,\nclose our accounts and cut them off at the source.",Ross,neutral,neutral,1,0,4,4,'
    '"00:12:24,660","00:12:30,915"\n',  # an utterance over two lines
    "4,You’re a genius!,Chandler,joy,positive,1,1,4,4,\"00:12:32,334\",\"00:12:33,960\"\n",
]


def run_extract(src: Path, out: Path) -> tuple[dict, str, list[dict]]:
    """(summary, stderr, index records) of one ``--kind text`` CLI run, which must exit 0."""
    proc = subprocess.run([sys.executable, "-m", "realtime.extract", "--kind", "text", "--input", str(src),
                           "--out", str(out), "--workers", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr, index


def test_a_short_transcript_row_is_skipped_counted_and_named(tmp_path, out_dir):
    src = tmp_path / "meld"
    src.mkdir()
    short = "5,Hi,Joey\n"  # 3 fields of 11: a truncated export; it starts on line 6 (row 3 spans two lines)
    (src / "dev_sent_emo.csv").write_text(MELD_HEADER + "".join(MELD_ROWS[:3]) + short + MELD_ROWS[3], encoding="utf-8")

    summary, err, index = run_extract(src, out_dir)
    assert summary["processed"] == 4 and summary["failed"] == 1, err[-2000:]
    warning = [line for line in err.splitlines() if "dev_sent_emo.csv#3" in line]
    assert len(warning) == 1 and "line 6" in warning[0] and "3 fields where the header has 11" in warning[0]
    failed = [r for r in index if r["status"] == "failed"]
    assert [r["source"] for r in failed] == ["dev_sent_emo.csv#3"]
    ok = {r["source"]: r for r in index if r["status"] == "ok"}
    assert sorted(ok) == [f"dev_sent_emo.csv#{i}" for i in (0, 1, 2, 4)]
    assert (ok["dev_sent_emo.csv#4"]["label"], ok["dev_sent_emo.csv#4"]["split"]) == ("happy", "val")


def test_a_valence_that_does_not_parse_fails_its_row_only(tmp_path):
    (tmp_path / "label.csv").write_text("id,text,label,mode\nabc_1,it was good,2.4,train\n"
                                        "abc_2,it was bad,minus one,train\nabc_3,fine,0.0,test\n")
    units, failures = plan("text", tmp_path)
    assert [i.source for u in units for i in u.items] == ["label.csv#0", "label.csv#2"]
    assert [f["source"] for f in failures] == ["label.csv#1"]
    assert failures[0]["error"].startswith("malformed row at line 3: could not convert string to float")


def _links(tmp_path: Path) -> Path:
    """An input folder with a real transcript, a link to a file and a link to a folder out of it,
    and a link to a file inside it; returns the input folder."""
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "secret.csv").write_text("id,text,label,mode\nsecret_1,not for extraction,1.0,train\n")
    (outside / "folder" / "inner.csv").write_text("id,text,label,mode\ninner_1,nor this,1.0,train\n")
    src = tmp_path / "in"
    src.mkdir()
    (src / "label.csv").write_text("id,text,label,mode\nabc_1,it was good,2.4,train\n")
    (src / "secret.csv").symlink_to(outside / "secret.csv")
    (src / "folder").symlink_to(outside / "folder", target_is_directory=True)
    (src / "again.csv").symlink_to(src / "label.csv")
    return src


def test_symbolic_links_to_files_and_folders_are_skipped_and_counted(tmp_path, out_dir):
    src = _links(tmp_path)
    units, failures = plan("text", src)
    assert [i.source for u in units for i in u.items] == ["label.csv#0"]
    assert sorted(f["source"] for f in failures) == ["again.csv", "folder", "secret.csv"]
    assert {f["error"] for f in failures} == {LINK_SKIPPED}

    summary, err, index = run_extract(src, out_dir)
    assert summary["processed"] == 1 and summary["failed"] == 3, err[-2000:]
    assert sum("symbolic link" in line for line in err.splitlines()) == 3
    assert not any("secret" in r["source"] or "inner" in r["source"] for r in index if r["status"] == "ok")


def test_the_input_itself_may_be_a_link(tmp_path):
    src = _links(tmp_path)
    named = tmp_path / "named"
    named.symlink_to(src, target_is_directory=True)
    units, failures = plan("text", named)
    assert [i.source for u in units for i in u.items] == ["label.csv#0"] and len(failures) == 3
